"""File and text commands of the device shell, behaving like Android's toybox."""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import shutil
import stat
import time

from mobilize.emulator.sandbox import Access, DeviceFileError
from mobilize.emulator.shell import CommandFunction, Invocation

_CHUNK = 1024 * 1024


def _split_flags(args: list[str], known: str) -> tuple[set[str], list[str]] | str:
    """Short flags (-rf) and operands; returns the bad flag's text when one is unknown."""
    flags: set[str] = set()
    operands: list[str] = []
    only_operands = False
    for arg in args:
        if only_operands or not arg.startswith("-") or arg == "-":
            operands.append(arg)
        elif arg == "--":
            only_operands = True
        else:
            for letter in arg[1:]:
                if letter not in known:
                    return letter
                flags.add(letter)
    return flags, operands


def _host(inv: Invocation, path: str, access: Access = Access.READ):
    """The host path of an operand, if the session's user may read (or write) it."""
    return inv.session.device.sandbox.host_path(path, inv.session.identity, access)


def cmd_echo(inv: Invocation) -> int:
    args = inv.args[1:]
    newline = True
    if args and args[0] == "-n":
        newline = False
        args = args[1:]
    inv.out(" ".join(args) + ("\n" if newline else ""))
    return 0


def cmd_true(inv: Invocation) -> int:
    return 0


def cmd_false(inv: Invocation) -> int:
    return 1


def cmd_exit(inv: Invocation) -> int:
    code = (
        int(inv.args[1])
        if len(inv.args) > 1 and inv.args[1].lstrip("-").isdigit()
        else inv.session.last_status
    )
    inv.session.variables["__exit__"] = str(code)
    return code & 0xFF


def cmd_sleep(inv: Invocation) -> int:
    try:
        seconds = float(inv.args[1])
    except (IndexError, ValueError):
        return inv.fail("Needs 1 argument")
    time.sleep(min(seconds, 600))
    return 0


def cmd_pwd(inv: Invocation) -> int:
    inv.out(inv.session.identity.cwd + "\n")
    return 0


def cmd_cd(inv: Invocation) -> int:
    target = inv.args[1] if len(inv.args) > 1 else "/"
    normalized = inv.session.device.sandbox.normalize(target, inv.session.identity.cwd)
    if not _host(inv, normalized).is_dir():
        inv.err(f"{inv.name}: {target}: No such file or directory\n")
        return 2
    inv.session.identity = inv.session.identity.with_cwd(normalized)
    return 0


def cmd_id(inv: Invocation) -> int:
    user = inv.session.identity.user
    if user == "shell":
        inv.out(
            "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),"
            "3003(inet) context=u:r:shell:s0\n"
        )
    else:
        info = inv.session.device.packages.get(user)
        uid = info.uid if info else 10000
        inv.out(
            f"uid={uid}(u0_a{uid - 10000}) gid={uid}(u0_a{uid - 10000})"
            " context=u:r:untrusted_app:s0\n"
        )
    return 0


def cmd_whoami(inv: Invocation) -> int:
    user = inv.session.identity.user
    info = inv.session.device.packages.get(user)
    inv.out(("shell" if user == "shell" else f"u0_a{(info.uid if info else 10000) - 10000}") + "\n")
    return 0


def cmd_uname(inv: Invocation) -> int:
    if "-m" in inv.args:
        inv.out("aarch64\n")
    elif "-a" in inv.args:
        inv.out("Linux localhost 5.15.0-android14 #1 SMP PREEMPT aarch64 Toybox\n")
    else:
        inv.out("Linux\n")
    return 0


def cmd_cat(inv: Invocation) -> int:
    operands = inv.args[1:]
    if not operands:
        inv.stdout.write(inv.stdin)
        return 0
    status = 0
    for path in operands:
        try:
            host = _host(inv, path)
            if host.is_dir():
                raise DeviceFileError(errno.EISDIR, path)
            with open(host, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    inv.stdout.write(chunk)
        except OSError as error:
            inv.file_error(error, path)
            status = 1
    return status


def _mode_string(mode: int) -> str:
    return stat.filemode(mode)


def cmd_ls(inv: Invocation) -> int:
    parsed = _split_flags(inv.args[1:], "laRdh1")
    if isinstance(parsed, str):
        return inv.fail(f"Unknown option '{parsed}'")
    flags, operands = parsed
    operands = operands or ["."]
    status = 0
    for position, path in enumerate(operands):
        try:
            host = _host(inv, path)
            info = os.lstat(host)
        except OSError as error:
            inv.file_error(error, path)
            status = 1
            continue
        if stat.S_ISDIR(info.st_mode) and "d" not in flags:
            names = sorted(os.listdir(host))
            if "a" in flags:
                names = [".", ".."] + names
            if len(operands) > 1:
                inv.out(("\n" if position else "") + f"{path}:\n")
            if "l" in flags:
                inv.out(f"total {len(names)}\n")
            for name in names:
                inv.out(_ls_line(host / name, name, "l" in flags))
        else:
            inv.out(_ls_line(host, path, "l" in flags))
    return status


def _ls_line(host, name: str, long: bool) -> str:
    if not long:
        return name + "\n"
    info = os.lstat(host)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.st_mtime))
    return f"{_mode_string(info.st_mode)} 1 shell shell {info.st_size:>8} {stamp} {name}\n"


def cmd_mkdir(inv: Invocation) -> int:
    parsed = _split_flags(inv.args[1:], "pm")
    if isinstance(parsed, str):
        return inv.fail(f"Unknown option '{parsed}'")
    flags, operands = parsed
    if not operands:
        return inv.fail("Needs 1 argument")
    status = 0
    for path in operands:
        try:
            host = _host(inv, path, Access.WRITE)
            if "p" in flags:
                host.mkdir(parents=True, exist_ok=True)
            else:
                host.mkdir()
        except OSError as error:
            inv.fail(f"'{path}': {error.strerror}")
            status = 1
    return status


def cmd_rm(inv: Invocation) -> int:
    parsed = _split_flags(inv.args[1:], "rRfv")
    if isinstance(parsed, str):
        return inv.fail(f"Unknown option '{parsed}'")
    flags, operands = parsed
    recursive = bool(flags & {"r", "R"})
    force = "f" in flags
    if not operands and not force:
        return inv.fail("Needs 1 argument")
    status = 0
    for path in operands:
        if inv.session.device.sandbox.normalize(path, inv.session.identity.cwd) == "/":
            inv.fail("rm /. if you mean it")
            status = 1
            continue
        try:
            # The entry and all it holds: a folder containing a protected one is refused.
            host = inv.session.device.sandbox.host_tree(path, inv.session.identity)
            if host.is_dir() and not host.is_symlink():
                if not recursive:
                    raise DeviceFileError(errno.EISDIR, path)
                shutil.rmtree(host)
            else:
                os.unlink(host)
        except FileNotFoundError:
            if not force:
                inv.fail(f"{path}: No such file or directory")
                status = 1
        except OSError as error:
            inv.file_error(error, path)
            status = 1
    return status


def cmd_touch(inv: Invocation) -> int:
    status = 0
    for path in inv.args[1:]:
        if path.startswith("-"):
            continue
        try:
            host = _host(inv, path, Access.WRITE)
            host.touch()
        except OSError as error:
            inv.file_error(error, path)
            status = 1
    return status


def _destination(inv: Invocation, source: str, target: str) -> str:
    """The device path a file lands on: TARGET, or TARGET/basename(SOURCE) for a folder."""
    sandbox = inv.session.device.sandbox
    cwd = inv.session.identity.cwd
    destination = sandbox.normalize(target, cwd)
    if _host(inv, destination).is_dir():
        name = posixpath.basename(sandbox.normalize(source, cwd))
        destination = posixpath.join(destination, name)
    return destination


def cmd_mv(inv: Invocation) -> int:
    operands = [a for a in inv.args[1:] if not a.startswith("-")]
    if len(operands) != 2:
        return inv.fail("Needs 2 arguments")
    sandbox, identity = inv.session.device.sandbox, inv.session.identity
    try:
        # rename() needs write access to both entries; a moved folder takes all it holds.
        source = sandbox.host_tree(operands[0], identity)
        target = _host(inv, _destination(inv, operands[0], operands[1]), Access.WRITE)
        os.replace(source, target)
    except OSError as error:
        return inv.fail(f"bad '{operands[0]}': {error.strerror}")  # toybox's rename failure
    return 0


def cmd_cp(inv: Invocation) -> int:
    operands = [a for a in inv.args[1:] if not a.startswith("-")]
    if len(operands) != 2:
        return inv.fail("Needs 2 arguments")
    try:
        source = _host(inv, operands[0])
        if not source.exists():
            raise DeviceFileError(errno.ENOENT, operands[0])
    except OSError as error:
        return inv.fail(f"bad '{operands[0]}': {error.strerror}")
    if source.is_dir():
        return inv.fail(f"Skipped dir '{operands[0]}'")
    destination = operands[1]
    try:
        destination = _destination(inv, operands[0], operands[1])
        target = _host(inv, destination, Access.WRITE)
        if inv.session.device.faults.disk_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), destination)
        shutil.copyfile(source, target)
    except OSError as error:
        return inv.file_error(error, destination)
    return 0


def cmd_chmod(inv: Invocation) -> int:
    operands = [a for a in inv.args[1:] if a not in ("-R",)]
    if len(operands) < 2:
        return inv.fail("Needs 2 arguments")
    mode_text, paths = operands[0], operands[1:]
    if not re.fullmatch(r"[0-7]{3,4}", mode_text):
        if not re.fullmatch(r"[ugoa]*[+-=][rwx]+", mode_text):
            return inv.fail(f"bad mode '{mode_text}'")
    status = 0
    for path in paths:
        try:
            host = _host(inv, path, Access.WRITE)
            current = stat.S_IMODE(os.stat(host).st_mode)
            os.chmod(host, _apply_mode(current, mode_text) | 0o600)
        except OSError as error:
            inv.file_error(error, path)
            status = 1
    return status


def _apply_mode(current: int, text: str) -> int:
    if text.isdigit():
        return int(text, 8)
    who, op, perms = re.fullmatch(r"([ugoa]*)([+-=])([rwx]+)", text).groups()
    who = who or "a"
    bits = 0
    for scope, shift in (("u", 6), ("g", 3), ("o", 0)):
        if scope in who or "a" in who:
            for perm, value in (("r", 4), ("w", 2), ("x", 1)):
                if perm in perms:
                    bits |= value << shift
    if op == "+":
        return current | bits
    if op == "-":
        return current & ~bits
    return bits


def cmd_sha256sum(inv: Invocation) -> int:
    operands = [a for a in inv.args[1:] if not a.startswith("-") or a == "-"]
    if not operands:
        inv.out(f"{hashlib.sha256(inv.stdin).hexdigest()}  -\n")
        return 0
    status = 0
    for path in operands:
        try:
            host = _host(inv, path)
            if host.is_dir():
                raise DeviceFileError(errno.EISDIR, path)
            digest = hashlib.sha256()
            with open(host, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            inv.out(f"{digest.hexdigest()}  {path}\n")
        except OSError as error:
            inv.file_error(error, path)
            status = 1
    return status


def cmd_stat(inv: Invocation) -> int:
    """Only `stat -c FORMAT` with %s (size), %n (name), %a (octal mode), %Y (mtime)."""
    args = inv.args[1:]
    fmt = None
    if len(args) >= 2 and args[0] == "-c":
        fmt, args = args[1], args[2:]
    status = 0
    for path in args:
        try:
            info = os.stat(_host(inv, path))
        except OSError as error:
            inv.fail(f"'{path}': {error.strerror}")
            status = 1
            continue
        if fmt is None:
            inv.out(f"  File: {path}\n  Size: {info.st_size}\n")
            continue
        text = (
            fmt.replace("%s", str(info.st_size))
            .replace("%n", path)
            .replace("%a", f"{stat.S_IMODE(info.st_mode):o}")
            .replace("%Y", str(int(info.st_mtime)))
        )
        inv.out(text + "\n")
    return status


def cmd_test(inv: Invocation) -> int:
    args = inv.args[1:]
    if inv.name == "[":
        if not args or args[-1] != "]":
            return inv.fail("missing ]", 2)
        args = args[:-1]
    negate = bool(args) and args[0] == "!"
    if negate:
        args = args[1:]
    result = _evaluate_test(inv, args)
    if result is None:
        return inv.fail("bad test expression", 2)
    return 0 if result != negate else 1


def _evaluate_test(inv: Invocation, args: list[str]) -> bool | None:
    if len(args) == 2 and args[0] in ("-e", "-f", "-d", "-s", "-r", "-w"):
        try:
            host = _host(inv, args[1])
        except OSError:
            return False
        checks = {
            "-e": host.exists,
            "-f": host.is_file,
            "-d": host.is_dir,
            "-s": lambda: host.is_file() and host.stat().st_size > 0,
            "-r": host.exists,
            "-w": host.exists,
        }
        return checks[args[0]]()
    if len(args) == 2 and args[0] in ("-n", "-z"):
        return bool(args[1]) if args[0] == "-n" else not args[1]
    if len(args) == 3 and args[1] in ("=", "!=", "-eq", "-ne", "-gt", "-lt", "-ge", "-le"):
        left, op, right = args
        if op in ("=", "!="):
            return (left == right) if op == "=" else (left != right)
        try:
            a, b = int(left), int(right)
        except ValueError:
            return None
        return {
            "-eq": a == b,
            "-ne": a != b,
            "-gt": a > b,
            "-lt": a < b,
            "-ge": a >= b,
            "-le": a <= b,
        }[op]
    if len(args) == 1:
        return bool(args[0])
    return None


def cmd_df(inv: Invocation) -> int:
    device = inv.session.device
    total_kb = device.profile.data_total_bytes // 1024
    used_kb = min(total_kb, device.sandbox.used_bytes() // 1024 + 6_000_000)
    if device.faults.disk_full:
        used_kb = total_kb
    available_kb = total_kb - used_kb
    percent = int(round(100 * used_kb / total_kb)) if total_kb else 100
    human = "-h" in inv.args

    def size(kb: int) -> str:
        if not human:
            return str(kb)
        value = float(kb)
        for unit in ("K", "M", "G", "T"):
            if value < 1024:
                return f"{value:.1f}{unit}"
            value /= 1024
        return f"{value:.1f}P"

    header = "Size" if human else "1K-blocks"
    inv.out(f"Filesystem        {header:>10} {'Used':>10} {'Available':>10} Use% Mounted on\n")
    rows = [("/dev/block/dm-46", "/data"), ("/dev/fuse", "/storage/emulated")]
    wanted = [a for a in inv.args[1:] if not a.startswith("-")]
    for source, mount in rows:
        if wanted and not any(
            w.startswith(mount) or (mount == "/storage/emulated" and w.startswith("/sdcard"))
            for w in wanted
        ):
            continue
        inv.out(
            f"{source:<17} {size(total_kb):>10} {size(used_kb):>10}"
            f" {size(available_kb):>10} {percent:>3}% {mount}\n"
        )
    return 0


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def cmd_grep(inv: Invocation) -> int:
    args = inv.args[1:]
    flags: set[str] = set()
    pattern = None
    files: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-e" and index + 1 < len(args):
            pattern = args[index + 1]
            index += 2
            continue
        if arg.startswith("-") and len(arg) > 1 and pattern is None:
            flags.update(arg[1:])
        elif pattern is None:
            pattern = arg
        else:
            files.append(arg)
        index += 1
    if pattern is None:
        return inv.fail("no pattern", 2)
    data = inv.stdin if not files else b"".join(_host(inv, f).read_bytes() for f in files)
    regex = re.compile(
        re.escape(pattern) if "F" in flags else pattern, re.IGNORECASE if "i" in flags else 0
    )
    matched = [
        line
        for line in _lines(data)
        if bool(regex.search(line.decode("utf-8", "replace"))) != ("v" in flags)
    ]
    if "c" in flags:
        inv.out(f"{len(matched)}\n")
    elif "q" not in flags:
        for line in matched:
            inv.stdout.write(line if line.endswith(b"\n") else line + b"\n")
    return 0 if matched else 1


def _count_option(args: list[str], default: int) -> tuple[int, list[str]]:
    count = default
    rest = []
    index = 0
    while index < len(args):
        if args[index] == "-n" and index + 1 < len(args):
            count = int(args[index + 1])
            index += 2
            continue
        if re.fullmatch(r"-\d+", args[index]):
            count = int(args[index][1:])
        else:
            rest.append(args[index])
        index += 1
    return count, rest


def cmd_head(inv: Invocation) -> int:
    count, files = _count_option(inv.args[1:], 10)
    data = inv.stdin if not files else _host(inv, files[0]).read_bytes()
    inv.stdout.write(b"".join(_lines(data)[:count]))
    return 0


def cmd_tail(inv: Invocation) -> int:
    count, files = _count_option(inv.args[1:], 10)
    data = inv.stdin if not files else _host(inv, files[0]).read_bytes()
    inv.stdout.write(b"".join(_lines(data)[-count:] if count else []))
    return 0


def cmd_wc(inv: Invocation) -> int:
    files = [a for a in inv.args[1:] if not a.startswith("-")]
    data = inv.stdin if not files else _host(inv, files[0]).read_bytes()
    lines = data.count(b"\n")
    if "-l" in inv.args:
        inv.out(f"{lines}\n")
    elif "-c" in inv.args:
        inv.out(f"{len(data)}\n")
    else:
        inv.out(f"{lines} {len(data.split())} {len(data)}\n")
    return 0


COMMANDS: dict[str, CommandFunction] = {
    "echo": cmd_echo,
    "true": cmd_true,
    "false": cmd_false,
    "exit": cmd_exit,
    "sleep": cmd_sleep,
    "pwd": cmd_pwd,
    "cd": cmd_cd,
    "id": cmd_id,
    "whoami": cmd_whoami,
    "uname": cmd_uname,
    "cat": cmd_cat,
    "ls": cmd_ls,
    "mkdir": cmd_mkdir,
    "rm": cmd_rm,
    "touch": cmd_touch,
    "mv": cmd_mv,
    "cp": cmd_cp,
    "chmod": cmd_chmod,
    "sha256sum": cmd_sha256sum,
    "stat": cmd_stat,
    "test": cmd_test,
    "[": cmd_test,
    "df": cmd_df,
    "grep": cmd_grep,
    "head": cmd_head,
    "tail": cmd_tail,
    "wc": cmd_wc,
}
