"""Driving the benchmark app on a device: install, cool-down gate, `am start`, waiting for
its result file, crash detection from logcat (this run's process only), and leaving the
device clean: the app stopped, the run's files gone, leftovers of a killed harness removed."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from mobilize.bench import app_contract
from mobilize.bench.config import BenchConfig, HarnessOptions
from mobilize.device import ops
from mobilize.device.device import Device
from mobilize.device.errors import AppError, DeviceError, DeviceTimeoutError, UsageError
from mobilize.device.logcat import CrashReport, find_crashes, logcat_excerpt, parse_logcat_line
from mobilize.device.parse import ThermalStatus
from mobilize.device.transports import quote
from mobilize.errors import MobilizeError

SUPPORTED_ABIS = ("arm64-v8a", "armeabi-v7a", "x86_64")
REMOTE_APK = f"{app_contract.REMOTE_WORK_DIR}/mobilize-bench.apk"
INSTALL_TIMEOUT_S = 120.0
AM_START_TIMEOUT_S = 60.0
CRASH_CHECK_EVERY_S = 1.0

Announce = Callable[[str], None]


def check_abi(info: ops.DeviceInfo) -> None:
    abis = info.abis or ((info.abi,) if info.abi else ())
    if not any(abi in SUPPORTED_ABIS for abi in abis):
        raise DeviceError(
            f"the device's ABI ({', '.join(abis) or 'unknown'}) is not one the benchmark app "
            f"supports ({', '.join(SUPPORTED_ABIS)})",
            hint="use a phone or emulated device with one of those ABIs",
            serial=info.serial,
        )


def find_apk(options: HarnessOptions) -> Path | None:
    if options.apk is not None:
        if not options.apk.is_file():
            raise UsageError(
                f"--apk {options.apk}: no such file",
                hint="pass the APK built by `cd android_app && ./gradlew assembleRelease`",
            )
        return options.apk
    return next((path for path in options.apk_search_paths if path.is_file()), None)


def ensure_app(
    device: Device,
    options: HarnessOptions,
    announce: Announce,
    deadline: ops.Deadline | None = None,
) -> None:
    """Install or update the bundled app when it is missing or at another version. The
    install keeps its own timeout; its time is given back to `deadline`."""
    installed = ops.package_info(device, limit=deadline)
    if installed is not None and installed.version_code == app_contract.APP_VERSION_CODE:
        return
    apk = find_apk(options)
    state = (
        "not installed"
        if installed is None
        else f"at version {installed.version_name} ({installed.version_code})"
    )
    if apk is None:
        raise AppError(
            f"the bundled benchmark app {app_contract.PACKAGE} is {state}; this mobilize needs "
            f"version {app_contract.APP_VERSION_NAME} ({app_contract.APP_VERSION_CODE}) and "
            "no APK was found",
            hint="build it on a machine with JDK 17 and the Android SDK: `cd android_app && "
            "./gradlew assembleRelease` (it cannot be built on machines without the SDK), "
            "then pass it with --apk PATH",
            serial=device.serial,
        )
    announce(f"[{device.serial}] installing {apk.name} (the app is {state})")
    started = time.monotonic()
    try:
        _install(device, apk)
    finally:
        if deadline is not None:
            deadline.extend(time.monotonic() - started)


def _install(device: Device, apk: Path) -> None:
    ops.make_dir(device, app_contract.REMOTE_WORK_DIR)
    device.push(apk, REMOTE_APK, INSTALL_TIMEOUT_S)
    try:
        result = device.shell(f"pm install -r -d {quote(REMOTE_APK)}", INSTALL_TIMEOUT_S)
    finally:
        ops.remove(device, REMOTE_APK)
    if not result.ok or "Success" not in result.stdout:
        raise AppError(
            f"installing the benchmark app failed: {result.stdout.strip()} {result.stderr.strip()}",
            hint="uninstall an old copy (`adb uninstall dev.mobilize.bench`) and run again",
            serial=device.serial,
        )


def cooldown_gate(
    device: Device,
    options: HarnessOptions,
    announce: Announce,
    run: ops.Deadline | None = None,
) -> tuple[ThermalStatus | None, float | None]:
    """Wait until the thermal status is none and the battery is under the threshold.

    Returns the last thermal status and battery temperature read: the run's "before".
    Each read is bounded by the run's deadline; the time spent waiting for the device to
    cool (bounded by --cooldown-timeout) is given back to it.
    """
    deadline = time.monotonic() + options.cooldown_timeout_s
    announced = False
    while True:
        thermal = ops.thermal_status(device, run)
        temp = ops.battery(device, run).temperature_c
        cool = (thermal is None or thermal <= ThermalStatus.NONE) and (
            temp is None or temp < options.max_battery_temp_c
        )
        if cool or options.cooldown_timeout_s <= 0:  # 0 s: no gate, just the readings
            return thermal, temp
        state = f"thermal status {thermal.label if thermal else '?'}, battery {temp} °C"
        if time.monotonic() >= deadline:
            raise DeviceTimeoutError(
                f"the device did not cool down ({state})",
                serial=device.serial,
                timeout_s=options.cooldown_timeout_s,
                hint="let the phone rest off the charger, or raise --cooldown-timeout / "
                "--max-battery-temp (0 s skips the gate)",
            )
        if not announced:
            announce(f"[{device.serial}] waiting for the device to cool down ({state})")
            announced = True
        pause = min(options.cooldown_poll_s, max(0.0, deadline - time.monotonic()))
        if run is None:
            time.sleep(pause)
            continue
        slept = time.monotonic()
        if run.cancel is not None:
            run.cancel.wait(pause)
        else:
            time.sleep(pause)
        run.extend(time.monotonic() - slept)
        run.check()


def am_start_command(run_id: str, remote_model: str, config: BenchConfig) -> str:
    strings = {
        app_contract.EXTRA_MODEL_PATH: remote_model,
        app_contract.EXTRA_DELEGATE: config.delegate.value,
        app_contract.EXTRA_GPU_PRECISION: config.gpu_precision.value,
        app_contract.EXTRA_RUN_ID: run_id,
    }
    ints = {
        app_contract.EXTRA_THREADS: config.threads,
        app_contract.EXTRA_WARMUP_RUNS: config.warmup_runs,
        app_contract.EXTRA_NUM_RUNS: config.num_runs,
    }
    parts = ["am", "start", "-W", "-S", "-n", quote(app_contract.COMPONENT)]
    for name, value in strings.items():
        parts += ["--es", quote(name), quote(value)]
    for name, number in ints.items():
        parts += ["--ei", quote(name), str(int(number))]
    return " ".join(parts)


def wait_for_result(
    device: Device,
    run_id: str,
    options: HarnessOptions,
    deadline: ops.Deadline | None = None,
    pid: int | None = None,
) -> str:
    """Poll `run-as PKG cat files/results/RUN.json` until it appears, the app dies, or the
    run's deadline (default: --timeout from now) passes. Only a crash of `pid`, the process
    this run started, counts (None: any crash of the app's package)."""
    command = (
        f"run-as {quote(app_contract.PACKAGE)} cat "
        f"{quote(app_contract.result_relative_path(run_id))}"
    )
    if deadline is None:
        deadline = ops.Deadline(options.result_timeout_s, serial=device.serial)
    next_crash_check = time.monotonic() + CRASH_CHECK_EVERY_S
    poll_s = options.result_poll_s
    while True:
        left = deadline.left()
        if left <= 0:
            raise _no_result(device, run_id, options, _logcat(device, deadline.grace(1.0)))
        deadline.check_cancel()
        # Each poll is bounded by what is left, so a silent device cannot stretch the wait.
        try:
            result = device.shell(command, max(0.2, min(ops.SHORT_TIMEOUT_S, left)))
        except DeviceTimeoutError as error:
            if not deadline.expired():
                raise
            raise _no_result(device, run_id, options, "") from error
        if result.ok and result.stdout.strip():
            return result.stdout
        _check_run_as(result.stdout + result.stderr, device.serial)
        now = time.monotonic()
        if now >= next_crash_check and deadline.left() > 0:
            next_crash_check = now + CRASH_CHECK_EVERY_S
            crash = crash_excerpt(device, pid, min(ops.SHORT_TIMEOUT_S, deadline.left()))
            if crash:
                raise AppError(
                    f"the benchmark app crashed during run {run_id}; logcat:\n{crash}",
                    hint="the excerpt shows why; out of memory or a delegate bug are common — "
                    "try fewer --threads or a smaller input, and on a GPU or NNAPI run "
                    "--delegate cpu",
                    serial=device.serial,
                )
        deadline.sleep(poll_s)
        poll_s = min(poll_s * 1.5, options.result_poll_max_s)


def _check_run_as(output: str, serial: str) -> None:
    """run-as refuses release builds and unknown packages: waiting longer would not help."""
    if "not debuggable" in output:
        raise AppError(
            f"run-as cannot read the app's results: {output.strip()}",
            hint="install a debuggable build of the app (`./gradlew assembleDebug`, or "
            "debuggable true in the release build type) and pass it with --apk",
            serial=serial,
        )
    if "unknown package" in output:
        raise AppError(
            f"the benchmark app is not installed: {output.strip()}",
            hint="run again with --apk PATH to install it",
            serial=serial,
        )


def _no_result(
    device: Device, run_id: str, options: HarnessOptions, excerpt: str
) -> DeviceTimeoutError:
    return DeviceTimeoutError(
        f"no result from the benchmark app for run {run_id}"
        + (f"; logcat:\n{excerpt}" if excerpt else ""),
        serial=device.serial,
        timeout_s=options.result_timeout_s,
        hint="a large model or many --runs may need a longer --timeout; "
        "a device that stopped answering needs a reconnect",
    )


# Only the tags a crash or the app's own line appear under: a phone's full log is megabytes.
LOGCAT_FILTER = " ".join(
    quote(spec)  # "*:S" unquoted would be a glob for the device's shell
    for spec in (
        "AndroidRuntime:E",
        "ActivityManager:I",
        "libc:F",
        "DEBUG:F",
        f"{app_contract.LOG_TAG}:V",
        "*:S",
    )
)


def _logcat(device: Device, limit: ops.Limit = None) -> str:
    try:
        result = device.shell(f"logcat -d {LOGCAT_FILTER}", ops.bounded(limit))
    except MobilizeError:
        return ""  # an excerpt for a message: never the error itself
    return result.stdout if result.ok else ""


def crash_of_run(dump: str, pid: int | None) -> CrashReport | None:
    """The app's crash in a logcat dump: a Java FATAL EXCEPTION, a "Fatal signal" line, or a
    tombstone block (">>> pkg <<<") without the libc line, in any logcat format. With `pid`
    (this run's process) a crash of another process of the app — an earlier run's — does
    not count."""
    package = app_contract.PACKAGE
    for crash in find_crashes(dump):
        if pid is not None and crash.pid is not None and crash.pid != pid:
            continue
        process, name = crash.process, crash.short_name
        if process is not None:
            if process == package or process.startswith(package + ":"):
                return crash
        elif name and (name == package or (len(name) >= 15 and package.endswith(name))):
            return crash
    return None


def crash_excerpt(device: Device, pid: int | None = None, limit: ops.Limit = None) -> str | None:
    """The logcat lines of this run's crash of the app, or None while it has not crashed."""
    dump = _logcat(device, limit)
    crash = crash_of_run(dump, pid)
    if crash is None:
        return None
    others = {c.pid for c in find_crashes(dump) if c.pid is not None and c.pid != crash.pid}
    if others:
        dump = "".join(
            line + "\n" for line in dump.splitlines() if parse_logcat_line(line).pid not in others
        )
    return logcat_excerpt(dump, (app_contract.PACKAGE, app_contract.LOG_TAG))


# --------------------------------------------------------------------------- clean-up

# What a run leaves in the work folder names the run: "RUNID-model.tflite" (a timing run),
# "quality-ID/" (a quality pass); the app's files of that run are named by the same id.
_LEFTOVER_RUN_ID = re.compile(r"^(\d{8}T\d{6}-[0-9a-f]{8})-|^(quality-[0-9a-f]{12})$")


def stop_app(device: Device, limit: ops.Limit = None) -> bool:
    """`am force-stop` the app; False (never an error) when the device did not take it."""
    try:
        device.shell(f"am force-stop {quote(app_contract.PACKAGE)}", ops.bounded(limit))
    except MobilizeError:
        return False
    return True


def remove_run_files(
    device: Device, run_ids: list[str], remote_paths: list[str], limit: ops.Limit = None
) -> bool:
    """Remove what the app wrote for these runs (result JSON, quality outputs), then what
    the harness pushed for them. One command line, the pushed files last: as long as they
    remain, the next session knows the run was not cleaned up and does it."""
    package = quote(app_contract.PACKAGE)
    app_files = [
        path
        for run_id in run_ids
        for path in (app_contract.result_relative_path(run_id), f"files/quality/{run_id}")
    ]
    parts = []
    if app_files:
        parts.append(f"run-as {package} rm -rf {' '.join(quote(p) for p in app_files)}")
    if remote_paths:
        parts.append(f"rm -rf {' '.join(quote(p) for p in remote_paths)}")
    if not parts:
        return True
    try:
        device.shell("; ".join(parts), ops.bounded(limit))
    except MobilizeError:
        return False
    return True


def end_run(
    device: Device, run_id: str, remote_model: str, limit: ops.Limit, *, app: bool = True
) -> bool:
    """However a run ended: the app stopped (it must not go on measuring, nor write after
    its files are gone), then its files removed. Never raises; False when the device did
    not answer the removal (the pushed model then stays for the next session to find)."""
    if app:
        stop_app(device, limit)
    return remove_run_files(device, [run_id] if app else [], [remote_model], limit)


def clean_leftovers(device: Device, limit: ops.Limit, announce: Announce) -> None:
    """At the start of a session (the device lock held, so no live run of ours is on the
    device): stop the app, and remove what runs of a killed or cut-off harness left in the
    work folder and, for those runs, in the app's files. Best effort: never raises."""
    work = app_contract.REMOTE_WORK_DIR
    try:
        listing = device.shell(
            f"am force-stop {quote(app_contract.PACKAGE)}; ls -1 {quote(work)} 2>/dev/null",
            ops.bounded(limit),
        )
    except MobilizeError:
        return
    lines = listing.stdout.splitlines()
    names = [name for name in lines if name.strip() not in ("", ".", "..") and "/" not in name]
    if not names:
        return
    run_ids = sorted(
        {match[1] or match[2] for name in names if (match := _LEFTOVER_RUN_ID.match(name))}
    )
    announce(
        f"[{device.serial}] removing what earlier runs left on the device "
        f"({len(names)} file(s) in {work})"
    )
    remove_run_files(device, run_ids, [work], limit)
