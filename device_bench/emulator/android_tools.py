"""Android's own shell tools: getprop, pm, am, dumpsys, run-as, logcat, pidof, ps.

Output formats follow what these tools print on Android 14, because the harness parses
them exactly as it parses a phone's (dumpsys meminfo's App Summary and TOTAL PSS line,
dumpsys thermalservice's "Thermal Status: N", dumpsys battery's temperature in tenths of
a degree Celsius, dumpsys package's versionCode/versionName lines).
"""

from __future__ import annotations

import time
import zlib

from mobilize.emulator.app import IntentError
from mobilize.emulator.packages import SYSTEM_PACKAGES, InstallError
from mobilize.emulator.sandbox import Identity
from mobilize.emulator.shell import CommandFunction, Invocation, ShellSession


def cmd_getprop(inv: Invocation) -> int:
    properties = inv.session.device.properties()
    if len(inv.args) >= 2:
        fallback = inv.args[2] if len(inv.args) > 2 else ""
        inv.out(properties.get(inv.args[1], fallback) + "\n")
        return 0
    for name in sorted(properties):
        inv.out(f"[{name}]: [{properties[name]}]\n")
    return 0


# --- pm ----------------------------------------------------------------------------------
def cmd_pm(inv: Invocation) -> int:
    if len(inv.args) < 2:
        return inv.fail("usage: pm [list|path|install|uninstall|clear] ...")
    sub = inv.args[1]
    handlers = {
        "list": _pm_list,
        "path": _pm_path,
        "install": _pm_install,
        "uninstall": _pm_uninstall,
        "clear": _pm_clear,
    }
    handler = handlers.get(sub)
    if handler is None:
        inv.err(f"Unknown command: {sub}\n")
        return 1
    return handler(inv, inv.args[2:])


def _pm_list(inv: Invocation, args: list[str]) -> int:
    if not args or args[0] != "packages":
        inv.err("Error: unknown list type\n")
        return 1
    options = [a for a in args[1:] if a.startswith("-")]
    filters = [a for a in args[1:] if not a.startswith("-")]
    packages = inv.session.device.packages
    rows = [(name, None) for name in SYSTEM_PACKAGES] + [(p.name, p) for p in packages.all()]
    if "-3" in options:
        rows = [row for row in rows if row[1] is not None]
    for name, info in sorted(rows):
        if filters and filters[0] not in name:
            continue
        line = "package:"
        if "-f" in options and info is not None:
            line += f"{info.apk_path}="
        line += name
        if "--show-versioncode" in options:
            line += f" versionCode:{info.version_code if info else 34}"
        inv.out(line + "\n")
    return 0


def _pm_path(inv: Invocation, args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        return inv.fail("package name required")
    info = inv.session.device.packages.get(names[0])
    if info is None:
        return 1
    inv.out(f"package:{info.apk_path}\n")
    return 0


def _pm_install(inv: Invocation, args: list[str]) -> int:
    operands = [a for a in args if not a.startswith("-")]
    if not operands:
        inv.err("Error: must either specify a package size or an APK file\n")
        return 1
    device = inv.session.device
    try:
        apk = device.sandbox.host_path(operands[-1], inv.session.identity)
        if not apk.is_file():
            raise InstallError("INSTALL_FAILED_INVALID_URI", f"Unable to open file: {operands[-1]}")
        if device.faults.disk_full:
            raise InstallError("INSTALL_FAILED_INSUFFICIENT_STORAGE")
        device.packages.install_apk(apk, allow_downgrade="-d" in args)
    except InstallError as error:
        detail = f": {error.detail}" if error.detail else ""
        inv.out(f"Failure [{error.code}{detail}]\n")
        return 1
    except OSError as error:
        inv.out(f"Failure [INSTALL_FAILED_INVALID_URI: {error.strerror}]\n")
        return 1
    inv.out("Success\n")
    return 0


def _pm_uninstall(inv: Invocation, args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        return inv.fail("package name required")
    device = inv.session.device
    device.apps.force_stop(names[0])
    if not device.packages.uninstall(names[0]):
        inv.out("Failure [DELETE_FAILED_INTERNAL_ERROR]\n")
        return 1
    inv.out("Success\n")
    return 0


def _pm_clear(inv: Invocation, args: list[str]) -> int:
    device = inv.session.device
    if not args:
        return inv.fail("package name required")
    device.apps.force_stop(args[0])
    if not device.packages.clear_data(args[0]):
        inv.out("Failed\n")
        return 1
    inv.out("Success\n")
    return 0


# --- am ----------------------------------------------------------------------------------
def cmd_am(inv: Invocation) -> int:
    if len(inv.args) < 2:
        return inv.fail("usage: am [start|force-stop] ...")
    sub = inv.args[1]
    if sub in ("start", "start-activity"):
        return _am_start(inv, inv.args[2:])
    if sub in ("force-stop", "kill"):
        if len(inv.args) < 3:
            return inv.fail("package name required")
        inv.session.device.apps.force_stop(inv.args[-1])
        return 0
    inv.err(f"Error: Unknown command: {sub}\n")
    return 1


def _parse_intent(args: list[str]) -> tuple[dict, str | None, str | None]:
    """(extras, component, error); extras typed as --es/--ei/--ez/--el/--ef say."""
    extras: dict = {}
    component = None
    index = 0
    converters = {
        "--es": str,
        "--ei": int,
        "--el": int,
        "--ef": float,
        "--ez": lambda v: {"true": True, "false": False}[v.lower()],
    }
    while index < len(args):
        arg = args[index]
        if arg in converters:
            if index + 2 >= len(args):
                return extras, component, f"Error: No value specified for extra {arg}"
            name, raw = args[index + 1], args[index + 2]
            try:
                extras[name] = converters[arg](raw)
            except (ValueError, KeyError):
                return extras, component, f"Error: Invalid value '{raw}' for {arg} {name}"
            index += 3
        elif arg == "-n" and index + 1 < len(args):
            component = args[index + 1]
            index += 2
        elif arg in ("-a", "-d", "-t", "-c", "--user") and index + 1 < len(args):
            index += 2
        elif arg.startswith("-"):
            index += 1  # -W, -S, -R and friends take no value
        else:
            component = component or arg
            index += 1
    return extras, component, None


def _am_start(inv: Invocation, args: list[str]) -> int:
    extras, component, error = _parse_intent(args)
    if error:
        inv.err(error + "\n")
        return 1
    if not component or "/" not in component:
        inv.err("Error: Activity not started, unable to resolve Intent\n")
        return 1
    package, activity = component.split("/", 1)
    shown = f"cmp={component}" + (" (has extras)" if extras else "")
    inv.out(f"Starting: Intent {{ {shown} }}\n")
    started = time.monotonic()
    try:
        inv.session.device.apps.start_activity(package, activity, extras, stop_first="-S" in args)
    except IntentError as problem:
        inv.err(f"Error type 3\nError: {problem}\n")
        return 1
    if "-W" in args:
        elapsed = max(1, int((time.monotonic() - started) * 1000) + 180)
        inv.out(
            "Status: ok\nLaunchState: COLD\n"
            f"Activity: {package}/{activity}\nTotalTime: {elapsed}\n"
            f"WaitTime: {elapsed + 4}\nComplete\n"
        )
    return 0


# --- run-as ------------------------------------------------------------------------------
def cmd_run_as(inv: Invocation) -> int:
    if len(inv.args) < 2:
        inv.err("usage: run-as <package-name> [--user <uid>] <command> [<args>]\n")
        return 1
    package = inv.args[1]
    rest = inv.args[2:]
    if rest[:1] == ["--user"]:
        rest = rest[2:]
    device = inv.session.device
    if device.packages.get(package) is None:
        inv.err(f"run-as: unknown package: {package}\n")
        return 1
    if not rest:
        inv.err("run-as: interactive shells are not supported here\n")
        return 1
    session = ShellSession(device, Identity(package, f"/data/data/{package}"))
    session.last_status = inv.session.last_status
    from mobilize.emulator.shell import SimpleCommand, Word

    command = SimpleCommand(words=[Word((arg,)) for arg in rest])
    return session._run_simple(command, inv.stdin, inv.stdout, inv.stderr)


# --- logcat, pidof, ps -------------------------------------------------------------------
def cmd_logcat(inv: Invocation) -> int:
    args = inv.args[1:]
    logcat = inv.session.device.logcat
    if "-c" in args:
        logcat.clear()
        return 0
    filterspecs = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-v", "-b", "-t", "-T", "-e", "--pid", "-m"):
            index += 2
            continue
        if arg == "-s":
            filterspecs.append("*:S")
        elif not arg.startswith("-"):
            filterspecs.append(arg)
        index += 1
    if "-d" not in args:
        inv.err("logcat: only 'logcat -d' (dump and exit) and 'logcat -c' are supported here\n")
        return 1
    inv.out(logcat.dump(filterspecs))
    return 0


def cmd_pidof(inv: Invocation) -> int:
    pids = [inv.session.device.apps.pid_of(name) for name in inv.args[1:]]
    found = [str(pid) for pid in pids if pid is not None]
    if not found:
        return 1
    inv.out(" ".join(found) + "\n")
    return 0


def cmd_ps(inv: Invocation) -> int:
    inv.out("USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n")
    inv.out("root             1     0 10929212  4588 0                   0 S init\n")
    for process in inv.session.device.apps.running():
        rss = int((process.memory or {}).get("rss") or 0)
        inv.out(
            f"u0_a100      {process.pid:>5}   900 14858852 {rss:>6} 0"
            f"                   0 S {process.package}\n"
        )
    return 0


# --- dumpsys -----------------------------------------------------------------------------
def cmd_dumpsys(inv: Invocation) -> int:
    if len(inv.args) < 2:
        return inv.fail("usage: dumpsys SERVICE [ARGS]")
    service = inv.args[1]
    handlers = {
        "meminfo": _dumpsys_meminfo,
        "thermalservice": _dumpsys_thermal,
        "battery": _dumpsys_battery,
        "package": _dumpsys_package,
        "SurfaceFlinger": _dumpsys_surfaceflinger,
    }
    handler = handlers.get(service)
    if handler is None:
        inv.err(f"Can't find service: {service}\n")
        return 0  # dumpsys itself exits 0 for an unknown service
    return handler(inv, inv.args[2:])


def _dumpsys_meminfo(inv: Invocation, args: list[str]) -> int:
    targets = [a for a in args if not a.startswith("-")]
    apps = inv.session.device.apps
    uptime = int(time.monotonic() * 1000)
    inv.out(f"Applications Memory Usage (in Kilobytes):\nUptime: {uptime} Realtime: {uptime}\n\n")
    if not targets:
        for process in apps.running():
            pss = int((process.memory or {}).get("pss") or 0)
            inv.out(f"{pss:>10,}K: {process.package} (pid {process.pid})\n")
        return 0
    process = apps.process(targets[0])
    if process is None:
        inv.out(f"No process found for: {targets[0]}\n")
        return 0
    memory = process.memory or _live_memory(process)
    pss = int(memory.get("pss") or 0)
    rss = int(memory.get("rss") or 0)
    native = int(memory.get("native_heap") or 0)
    other = max(pss - native, 0)
    inv.out(
        f"** MEMINFO in pid {process.pid} [{process.package}] **\n"
        "                   Pss  Private  Private  SwapPss      Rss     Heap     Heap     Heap\n"
        "                 Total    Dirty    Clean    Dirty    Total     Size    Alloc     Free\n"
        "                ------   ------   ------   ------   ------   ------   ------   ------\n"
        f"  Native Heap {native:>8} {native:>8} {0:>8} {0:>8} {native:>8}"
        f" {native + 2048:>8} {native:>8} {2048:>8}\n"
        f"  Dalvik Heap {0:>8} {0:>8} {0:>8} {0:>8} {0:>8} {0:>8} {0:>8} {0:>8}\n"
        f"        Other {other:>8} {other:>8} {0:>8} {0:>8} {max(rss - native, 0):>8}\n"
        f"        TOTAL {pss:>8} {pss:>8} {0:>8} {0:>8} {rss:>8}"
        f" {native + 2048:>8} {native:>8} {2048:>8}\n"
        "\n App Summary\n"
        "                       Pss(KB)                        Rss(KB)\n"
        "                        ------                         ------\n"
        f"           Java Heap: {0:>8}                       {0:>8}\n"
        f"         Native Heap: {native:>8}                       {native:>8}\n"
        f"             Unknown: {other:>8}                       {max(rss - native, 0):>8}\n"
        f"           TOTAL PSS: {pss:>8}            TOTAL RSS: {rss:>8}"
        f"      TOTAL SWAP PSS: {0:>8}\n"
    )
    return 0


def _live_memory(process) -> dict:
    if process.worker is None or process.worker.poll() is not None:
        return {"pss": 0, "rss": 0, "native_heap": 0}
    try:
        import psutil

        info = psutil.Process(process.worker.pid).memory_full_info()
        return {"pss": info.pss / 1024, "rss": info.rss / 1024, "native_heap": info.uss / 1024}
    except Exception:  # noqa: BLE001 - the worker may have just ended
        return {"pss": 0, "rss": 0, "native_heap": 0}


def _dumpsys_thermal(inv: Invocation, args: list[str]) -> int:
    device = inv.session.device
    status = device.thermal.status()
    celsius = device.thermal.battery_temperature_tenths() / 10
    inv.out(
        "IsStatusOverride: false\n"
        "ThermalEventListeners:\n\tcallbacks: 1\n\tkilled: false\n\tbroadcasts count: -1\n"
        "ThermalStatusListeners:\n\tcallbacks: 1\n\tkilled: false\n\tbroadcasts count: -1\n"
        f"Thermal Status: {int(status)}\n"
        "Cached temperatures:\n"
        f"\tTemperature{{mValue={celsius:.1f}, mType=2, mName=battery, mStatus={int(status)}}}\n"
        "HAL Ready: true\n"
        "HAL connection:\n\tThermalHAL 2.0 connected: yes\n"
        "Current temperatures from HAL:\n"
        f"\tTemperature{{mValue={celsius:.1f}, mType=2, mName=battery, mStatus={int(status)}}}\n"
        f"\tTemperature{{mValue={celsius + 6:.1f}, mType=0, mName=cpu0, mStatus={int(status)}}}\n"
    )
    return 0


def _dumpsys_battery(inv: Invocation, args: list[str]) -> int:
    device = inv.session.device
    inv.out(
        "Current Battery Service state:\n"
        "  AC powered: false\n  USB powered: true\n  Wireless powered: false\n"
        "  Max charging current: 500000\n  Max charging voltage: 5000000\n"
        "  Charge counter: 3012000\n  status: 2\n  health: 2\n  present: true\n"
        f"  level: {device.profile.battery_level}\n  scale: 100\n  voltage: 4312\n"
        f"  temperature: {device.thermal.battery_temperature_tenths()}\n"
        "  technology: Li-ion\n"
    )
    return 0


def _dumpsys_package(inv: Invocation, args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    packages = inv.session.device.packages
    infos = [packages.get(names[0])] if names else packages.all()
    infos = [info for info in infos if info is not None]
    if not infos:
        return 0  # the real dumpsys prints no Packages section for an unknown package
    inv.out("Packages:\n")
    for info in infos:
        code_id = zlib.crc32(info.code_path.encode()) & 0xFFFFFFF
        installed = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.first_install_time))
        updated = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.last_update_time))
        inv.out(
            f"  Package [{info.name}] ({zlib.crc32(info.name.encode()) & 0xFFFFFFF:07x}):\n"
            f"    userId={info.uid}\n"
            f"    pkg=Package{{{code_id:07x} {info.name}}}\n"
            f"    codePath={info.code_path}\n"
            f"    resourcePath={info.code_path}\n"
            f"    primaryCpuAbi={inv.session.device.profile.properties['ro.product.cpu.abi']}\n"
            f"    versionCode={info.version_code} minSdk={info.min_sdk}"
            f" targetSdk={info.target_sdk}\n"
            f"    versionName={info.version_name}\n"
            f"    dataDir=/data/user/0/{info.name}\n"
            f"    firstInstallTime={installed}\n"
            f"    lastUpdateTime={updated}\n"
        )
    return 0


def _dumpsys_surfaceflinger(inv: Invocation, args: list[str]) -> int:
    gpu = inv.session.device.profile.gpu
    inv.out(
        "Build configuration: [sf PRESENT_TIME_OFFSET=0 FORCE_HWC_FOR_RBG_TO_YUV=1"
        " MAX_VIRT_DISPLAY_DIM=0]\n"
        "Display identification data:\n\n"
        f"GLES: {gpu.vendor}, {gpu.renderer}, {gpu.version}\n"
    )
    return 0


COMMANDS: dict[str, CommandFunction] = {
    "getprop": cmd_getprop,
    "pm": cmd_pm,
    "am": cmd_am,
    "run-as": cmd_run_as,
    "logcat": cmd_logcat,
    "pidof": cmd_pidof,
    "ps": cmd_ps,
    "dumpsys": cmd_dumpsys,
}


def cmd_cmd(inv: Invocation) -> int:
    """`cmd package ...` is the modern spelling of pm."""
    if inv.args[1:2] != ["package"]:
        return inv.fail("only 'cmd package' is supported here")
    return cmd_pm(Invocation(["pm", *inv.args[2:]], inv.stdin, inv.stdout, inv.stderr, inv.session))


COMMANDS["cmd"] = cmd_cmd
