"""Issue 16: the shell user and run-as get a phone's file permissions on every path touched.

Sources and destinations of mv/cp/rm, redirection targets, and folders that contain a
protected folder are all checked; each refusal is asserted with toybox's or mksh's text and
with the host folder (the device's files and everything beside them) unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.exceptions import PushFailedError, TcpTimeoutException

from mobilize.bench import app_contract
from mobilize.emulator.device import EmulatedDevice
from mobilize.emulator.packages import ApkManifest
from mobilize.emulator.profile import load_profile
from mobilize.emulator.shell import BufferSink, ShellSession
from mobilize.emulator.testing import running_emulator

PKG = app_contract.PACKAGE
SECRET = f"/data/data/{PKG}/files/secret.txt"
OTHER_SECRET = "/data/data/com.other.app/files/secret.txt"
KEYS = "/data/misc/adb/adb_keys"
DENIED = "Permission denied"


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry below `folder`: kind, mode and (for files) content."""
    entries: dict[str, tuple] = {}
    for directory, names, files in os.walk(folder):
        for name in names + files:
            path = Path(directory, name)
            relative = str(path.relative_to(folder))
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[relative] = ("dir", os.lstat(path).st_mode)
            else:
                entries[relative] = ("file", os.lstat(path).st_mode, path.read_bytes())
    return entries


def sh(device: EmulatedDevice, line: str) -> tuple[int, str, str]:
    out, err = BufferSink(), BufferSink()
    code = ShellSession(device).run(line, out, err)
    return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture
def device(tmp_path: Path) -> EmulatedDevice:
    device = EmulatedDevice(tmp_path / "device", load_profile())
    device.packages.install_manifest(
        ApkManifest("com.other.app", 1, "1"), None, allow_downgrade=True
    )
    join = device.sandbox.join
    join(SECRET).write_text("app secret")
    join(OTHER_SECRET).write_text("other secret")
    join(KEYS).write_text("TRUSTED host\n")
    join("/sdcard/k").write_text("KEY evil@host\n")
    join("/data/local/tmp/keep").mkdir()
    join("/system/bin/sh").write_text("#!")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f").write_text("host file")
    return device


def mv_denied(source: str) -> str:
    return f"mv: bad '{source}': {DENIED}\n"


SHELL_REFUSALS = [
    # moving protected folders, their parents and app data away
    ("mv /data /sdcard/d", mv_denied("/data")),
    ("mv /data/data /sdcard/d", mv_denied("/data/data")),
    ("mv /data/misc /sdcard/d", mv_denied("/data/misc")),
    ("mv /data/misc/adb /sdcard/d", mv_denied("/data/misc/adb")),
    ("mv /data/local /sdcard/d", mv_denied("/data/local")),
    ("mv /data/local/tmp /sdcard/d", mv_denied("/data/local/tmp")),
    ("mv /system /sdcard/d", mv_denied("/system")),
    ("mv /sdcard /data/local/tmp/d", mv_denied("/sdcard")),
    (f"mv /data/data/{PKG} /sdcard/d", mv_denied(f"/data/data/{PKG}")),
    (f"mv {SECRET} /sdcard/d", mv_denied(SECRET)),
    ("mv /sdcard/../data /sdcard/d", mv_denied("/sdcard/../data")),
    ("cd /data && mv data /sdcard/d", mv_denied("data")),
    ("cd /data/local/tmp && mv ../../../data /sdcard/d", mv_denied("../../../data")),
    # moving onto protected files
    (f"mv /sdcard/k {KEYS}", mv_denied("/sdcard/k")),
    ("mv /sdcard/k /data/misc/adb", mv_denied("/sdcard/k")),
    (f"mv /sdcard/k {SECRET}", mv_denied("/sdcard/k")),
    ("mv /sdcard/k /system/bin/sh", mv_denied("/sdcard/k")),
    # removing them
    ("rm -rf /data", f"rm: /data: {DENIED}\n"),
    ("rm -rf /data/data", f"rm: /data/data: {DENIED}\n"),
    ("rm -rf /data/misc", f"rm: /data/misc: {DENIED}\n"),
    (f"rm -f {KEYS}", f"rm: {KEYS}: {DENIED}\n"),
    ("rm -rf /data/local", f"rm: /data/local: {DENIED}\n"),
    ("rm -rf /data/local/tmp", f"rm: /data/local/tmp: {DENIED}\n"),
    ("rm -rf /sdcard", f"rm: /sdcard: {DENIED}\n"),
    ("rm -rf /system", f"rm: /system: {DENIED}\n"),
    ("rm -rf /sdcard/../data", f"rm: /sdcard/../data: {DENIED}\n"),
    (f"rm -rf /data/data/{PKG}/files", f"rm: /data/data/{PKG}/files: {DENIED}\n"),
    (f"rm -f {SECRET}", f"rm: {SECRET}: {DENIED}\n"),
    ("rm -rf /", "rm: rm /. if you mean it\n"),
    ("rm -rf /data/local/tmp/../../..", "rm: rm /. if you mean it\n"),
    # redirections
    (f"echo KEY >> {KEYS}", f"/system/bin/sh: can't create {KEYS}: {DENIED}\n"),
    (f"echo KEY > {KEYS}", f"/system/bin/sh: can't create {KEYS}: {DENIED}\n"),
    (f"echo x > {SECRET}", f"/system/bin/sh: can't create {SECRET}: {DENIED}\n"),
    ("echo x > /data/x", f"/system/bin/sh: can't create /data/x: {DENIED}\n"),
    ("echo x > /system/bin/sh", f"/system/bin/sh: can't create /system/bin/sh: {DENIED}\n"),
    (f"cat < {SECRET}", f"/system/bin/sh: can't open {SECRET}: {DENIED}\n"),
    (f"cat < {KEYS}", f"/system/bin/sh: can't open {KEYS}: {DENIED}\n"),
    # copies
    (f"cp /sdcard/k {KEYS}", f"cp: {KEYS}: {DENIED}\n"),
    ("cp /sdcard/k /data/misc/adb/", f"cp: /data/misc/adb/: {DENIED}\n"),
    (f"cp /sdcard/k {SECRET}", f"cp: {SECRET}: {DENIED}\n"),
    (f"cp {SECRET} /sdcard/s", f"cp: bad '{SECRET}': {DENIED}\n"),
    (f"cp {KEYS} /sdcard/s", f"cp: bad '{KEYS}': {DENIED}\n"),
    # other writes and reads
    (f"touch {KEYS}", f"touch: {KEYS}: {DENIED}\n"),
    (f"chmod 666 {KEYS}", f"chmod: {KEYS}: {DENIED}\n"),
    ("mkdir /data/data/com.evil.app", f"mkdir: '/data/data/com.evil.app': {DENIED}\n"),
    ("mkdir -p /data/misc/adb/x", f"mkdir: '/data/misc/adb/x': {DENIED}\n"),
    (f"cat {KEYS}", f"cat: {KEYS}: {DENIED}\n"),
    (f"cat {SECRET}", f"cat: {SECRET}: {DENIED}\n"),
    ("ls /data/data", f"ls: /data/data: {DENIED}\n"),
]


@pytest.mark.parametrize(("line", "error"), SHELL_REFUSALS)
def test_the_shell_user_is_refused(device, tmp_path, line, error) -> None:
    before = snapshot(tmp_path)
    code, out, err = sh(device, line)
    assert (code, out, err) == (1, "", error)
    assert snapshot(tmp_path) == before


RUN_AS_REFUSALS = [
    ("rm -rf /data/local/tmp/keep", f"rm: /data/local/tmp/keep: {DENIED}\n"),
    (f"rm -rf /data/data/{PKG}", f"rm: /data/data/{PKG}: {DENIED}\n"),
    ("rm -rf ..", f"rm: ..: {DENIED}\n"),
    ("rm -rf /data/data/com.other.app", f"rm: /data/data/com.other.app: {DENIED}\n"),
    ("mv files /sdcard/f", mv_denied("files")),
    (f"mv /data/data/{PKG} /data/data/{PKG}/files/x", mv_denied(f"/data/data/{PKG}")),
    (f"mv files/secret.txt {OTHER_SECRET}", mv_denied("files/secret.txt")),
    (f"cp files/secret.txt {KEYS}", f"cp: {KEYS}: {DENIED}\n"),
    ("cp files/secret.txt /sdcard/s", f"cp: /sdcard/s: {DENIED}\n"),
    (f"cat {OTHER_SECRET}", f"cat: {OTHER_SECRET}: {DENIED}\n"),
    (f"cat {KEYS}", f"cat: {KEYS}: {DENIED}\n"),
    ("touch /sdcard/x", f"touch: /sdcard/x: {DENIED}\n"),
    ("mkdir /data/local/tmp/x", f"mkdir: '/data/local/tmp/x': {DENIED}\n"),
]


@pytest.mark.parametrize(("command", "error"), RUN_AS_REFUSALS)
def test_run_as_touches_only_its_own_tree(device, tmp_path, command, error) -> None:
    before = snapshot(tmp_path)
    assert sh(device, f"run-as {PKG} {command}") == (1, "", error)
    assert snapshot(tmp_path) == before


def test_what_each_user_may_do_still_works(device) -> None:
    assert sh(device, "echo in > /data/local/tmp/in && mv /data/local/tmp/in /sdcard/in")[0] == 0
    assert sh(device, f"run-as {PKG} cp /sdcard/in files/in && run-as {PKG} cat files/in") == (
        0,
        "in\n",
        "",
    )
    assert sh(device, f"run-as {PKG} cat files/secret.txt > /data/local/tmp/out")[0] == 0
    assert device.sandbox.join("/data/local/tmp/out").read_text() == "app secret"
    assert sh(device, f"run-as {PKG} mkdir -p files/q/r && run-as {PKG} rm -rf files/q")[0] == 0
    assert sh(device, "mkdir -p /sdcard/a/b && rm -rf /sdcard/a && cat /data/local/tmp/out") == (
        0,
        "app secret",
        "",
    )


def test_a_symlinked_folder_cannot_lead_a_write_outside(device, tmp_path) -> None:
    # Only the host can make links (the shell has no ln); a planted one still leads nowhere.
    (device.sandbox.root / "data/local/tmp/out").symlink_to(tmp_path / "outside")
    (device.sandbox.root / "sdcard/appdata").symlink_to(device.sandbox.join(f"/data/data/{PKG}"))
    before = snapshot(tmp_path)
    out, appdata = "/data/local/tmp/out", "/sdcard/appdata/files"
    for line, error in (
        (f"rm -f {out}/f", f"rm: {out}/f: {DENIED}\n"),
        (f"echo x > {out}/g", f"/system/bin/sh: can't create {out}/g: {DENIED}\n"),
        (f"cat {appdata}/secret.txt", f"cat: {appdata}/secret.txt: {DENIED}\n"),
        (f"rm -rf {appdata}", f"rm: {appdata}: {DENIED}\n"),
    ):
        assert sh(device, line) == (1, "", error)
    assert snapshot(tmp_path) == before


# --- over ADB: push (sync SEND) and the trusted keys ------------------------------------
def connect(handle, key, *, auth_timeout_s: float = 5) -> AdbDeviceTcp:
    client = AdbDeviceTcp(handle.host, handle.port, default_transport_timeout_s=10)
    client.connect(rsa_keys=[key.signer()], auth_timeout_s=auth_timeout_s)
    return client


@pytest.mark.emulator
@pytest.mark.parametrize(
    "remote",
    [KEYS, SECRET, "/data/x", "/system/bin/evil", "/data/local/tmp/../../misc/adb/adb_keys"],
)
def test_push_into_protected_paths_fails_like_adbd(emulated_device, host_key, tmp_path, remote):
    local = tmp_path / "payload"
    local.write_text("KEY evil@host\n")
    client = connect(emulated_device, host_key)  # allowed: its key is in adb_keys now
    before = snapshot(tmp_path)
    try:
        with pytest.raises(PushFailedError, match=f"create file: {DENIED}"):
            client.push(str(local), remote)
    finally:
        client.close()
    assert snapshot(tmp_path) == before


@pytest.mark.emulator
def test_a_key_the_shell_tries_to_add_does_not_authenticate(
    tmp_path, host_key, other_host_key
) -> None:
    root = tmp_path / "locked"
    keys = root / "data/misc/adb/adb_keys"
    keys.parent.mkdir(parents=True)
    keys.write_text(host_key.public_line + "\n")
    with running_emulator(root, accept_new_keys=False) as handle:
        assert handle.device.trusted_keys.path.resolve() == keys.resolve()
        evil = other_host_key.public_line
        local = tmp_path / "evil.pub"
        local.write_text(evil + "\n")
        client = connect(handle, host_key)
        try:
            for line in (
                f"echo '{evil}' >> {KEYS}",
                f"echo '{evil}' > /sdcard/k && cp /sdcard/k {KEYS}",
                f"echo '{evil}' > /sdcard/k && mv /sdcard/k {KEYS}",
                f"echo '{evil}' > /sdcard/k && run-as {PKG} cp /sdcard/k {KEYS}",
                f"rm -f {KEYS}",
            ):
                assert DENIED in client.shell(f"{line} 2>&1; echo rc=$?")
            with pytest.raises(PushFailedError, match=DENIED):
                client.push(str(local), KEYS)
        finally:
            client.close()
        assert keys.read_text() == host_key.public_line + "\n"
        with pytest.raises(TcpTimeoutException):
            connect(handle, other_host_key, auth_timeout_s=1)
        assert "not accepted" in handle.logcat.text()
        connect(handle, host_key).close()  # the trusted key still is
