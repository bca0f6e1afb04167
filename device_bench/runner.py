"""Benchmark one model on one device: push, start the app, wait, pull, check, clean up.

A BenchSession holds one device connection for a series of runs. Every wait loops
against a deadline; every device call has a timeout; the pushed model is removed whatever
happens.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from device_bench import app_contract, benchmark_model, ops
from device_bench.device import Device
from device_bench.errors import AppError, DeviceError, DeviceTimeoutError, UsageError
from device_bench.model_input import ModelToBench
from device_bench.parse import MemInfo, ThermalStatus, logcat_excerpt, parse_am_start
from device_bench.stats import coefficient_of_variation
from device_bench.transports import quote

SUPPORTED_ABIS = ("arm64-v8a", "armeabi-v7a", "x86_64")
REPO_ROOT = Path(__file__).resolve().parent.parent
# Where `./gradlew assembleRelease` / `assembleDebug` leave the APK.
DEFAULT_APK_PATHS = (
    REPO_ROOT / "android_app/app/build/outputs/apk/release/app-release.apk",
    REPO_ROOT / "android_app/app/build/outputs/apk/release/app-release-unsigned.apk",
    REPO_ROOT / "android_app/app/build/outputs/apk/debug/app-debug.apk",
)
REMOTE_APK = f"{app_contract.REMOTE_WORK_DIR}/mobilize-bench.apk"
INSTALL_TIMEOUT_S = 120.0
AM_START_TIMEOUT_S = 60.0
CRASH_CHECK_EVERY_S = 1.0

Announce = Callable[[str], None]
DeviceFactory = Callable[[Device | None], Device]


class Delegate(enum.Enum):
    CPU = "cpu"
    GPU = "gpu"
    NNAPI = "nnapi"


class GpuPrecision(enum.Enum):
    FP16 = "fp16"
    FP32 = "fp32"


class RunnerKind(enum.Enum):
    APP = "app"
    BENCHMARK_MODEL = "benchmark-model"


@dataclass(frozen=True)
class BenchConfig:
    delegate: Delegate = Delegate.CPU
    threads: int = 4
    warmup_runs: int = 5
    num_runs: int = 50
    gpu_precision: GpuPrecision = GpuPrecision.FP16

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise UsageError(f"--threads must be at least 1, not {self.threads}")
        if self.num_runs < 1:
            raise UsageError(f"--runs must be at least 1, not {self.num_runs}")
        if self.warmup_runs < 0:
            raise UsageError(f"--warmup must be 0 or more, not {self.warmup_runs}")

    def as_schema_dict(self) -> dict[str, object]:
        return {
            "delegate": self.delegate.value,
            "threads": self.threads,
            "warmup_runs": self.warmup_runs,
            "num_runs": self.num_runs,
            "gpu_precision": self.gpu_precision.value,
        }


@dataclass(frozen=True)
class HarnessOptions:
    runner: RunnerKind = RunnerKind.APP
    binary: Path | None = None
    apk: Path | None = None
    push_timeout_s: float = 300.0
    result_timeout_s: float = 600.0
    retries: int = 0
    cooldown_timeout_s: float = 300.0
    max_battery_temp_c: float = 40.0
    cooldown_poll_s: float = 5.0
    # Polls start fast (short runs end in well under a second) and back off to one a
    # second, so long runs are not disturbed by a `run-as cat` every few milliseconds.
    result_poll_s: float = 0.05
    result_poll_max_s: float = 1.0
    cv_warning: float = 0.10
    apk_search_paths: tuple[Path, ...] = field(default=DEFAULT_APK_PATHS)

    def __post_init__(self) -> None:
        if self.runner is RunnerKind.BENCHMARK_MODEL and (
            self.binary is None or not self.binary.is_file()
        ):
            raise UsageError(
                "--runner benchmark-model needs --binary PATH to Google's benchmark_model"
                + (f" ({self.binary} is not a file)" if self.binary else ""),
                hint="download the prebuilt benchmark_model for the phone's ABI (TensorFlow "
                "Lite performance docs) and pass its path, or use the bundled app (--runner app)",
            )
        if self.retries < 0:
            raise UsageError(f"--retries must be 0 or more, not {self.retries}")


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(app_contract.RESULT_SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def schema_errors(result: object) -> list[str]:
    """Every way `result` breaks bench_result.schema.json (empty when it conforms)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in _validator().iter_errors(result)
    ]


def new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class BenchSession:
    """One device, a series of runs; reconnects through `factory` when a push loses it."""

    def __init__(self, factory: DeviceFactory, options: HarnessOptions, announce: Announce):
        self._factory = factory
        self.options = options
        self.announce = announce
        self.device = factory(None)
        self.info: ops.DeviceInfo | None = None

    @property
    def serial(self) -> str:
        return self.device.serial

    def close(self) -> None:
        self.device.close()

    def prepare(self) -> ops.DeviceInfo:
        """Device facts, ABI check, app installed at the right version, work folder."""
        self.info = ops.device_info(self.device)
        check_abi(self.info)
        if self.options.runner is RunnerKind.APP:
            ensure_app(self.device, self.options, self.announce)
        ops.make_dir(self.device, app_contract.REMOTE_WORK_DIR)
        return self.info

    def run(self, model: ModelToBench, config: BenchConfig) -> dict[str, Any]:
        """One run: a record with the schema-valid result and the harness's own figures."""
        if self.info is None:
            self.prepare()
        assert self.info is not None
        started = time.monotonic()
        run_id = new_run_id()
        thermal_before, battery_before = cooldown_gate(self.device, self.options, self.announce)
        remote_model = f"{app_contract.REMOTE_WORK_DIR}/{run_id}-{model.path.name}"
        push_started = time.monotonic()
        self.device, _ = ops.push_with_retries(
            self._reconnect,
            model.path,
            remote_model,
            timeout=self.options.push_timeout_s,
            retries=self.options.retries,
            announce=self.announce,
            sha256=model.sha256,
        )
        push_s = time.monotonic() - push_started
        try:
            if self.options.runner is RunnerKind.BENCHMARK_MODEL:
                result = self._run_benchmark_model(run_id, remote_model, config)
            else:
                result = self._run_app(run_id, remote_model, config)
            # PSS of the app's process; benchmark_model is no app, its own figures stand.
            meminfo = (
                ops.meminfo(self.device)
                if self.options.runner is RunnerKind.APP
                else MemInfo(None, None, None, None)
            )
        finally:
            ops.remove(self.device, remote_model)
        battery_after = ops.battery(self.device).temperature_c
        thermal_after = ops.thermal_status(self.device)
        return self._record(
            model,
            result,
            meminfo,
            started,
            push_s,
            (thermal_before, thermal_after),
            (battery_before, battery_after),
        )

    def _reconnect(self, old: Device | None) -> Device:
        if old is None:
            return self.device
        old.close()
        return self._factory(old)

    def _run_app(self, run_id: str, remote_model: str, config: BenchConfig) -> dict[str, Any]:
        device = self.device
        device.shell("logcat -c", ops.SHORT_TIMEOUT_S)
        command = am_start_command(run_id, remote_model, config)
        started = device.shell(command, AM_START_TIMEOUT_S)
        am = parse_am_start(started.stdout)
        if not started.ok or not am.ok:
            raise AppError(
                f"the benchmark app did not start: {am.error or started.stdout.strip()}",
                hint="check the app is installed (`mobilize devices`) or reinstall it with --apk",
                serial=device.serial,
            )
        text = wait_for_result(device, run_id, self.options)
        try:
            result = json.loads(text)
        except json.JSONDecodeError as error:
            raise AppError(
                f"the app's result for run {run_id} is not JSON: {error}",
                hint="a bug in the app; the raw text was:\n" + text[:500],
                serial=device.serial,
            ) from error
        device.shell(
            f"run-as {quote(app_contract.PACKAGE)} rm -f "
            f"{quote(app_contract.result_relative_path(run_id))}",
            ops.SHORT_TIMEOUT_S,
        )
        checked = check_result(result, device.serial)
        if checked["run_id"] != run_id:
            raise AppError(
                f"the app answered run {run_id} with a result for run {checked['run_id']}",
                hint="another tool may be driving the app; run again",
                serial=device.serial,
            )
        return checked

    def _run_benchmark_model(
        self, run_id: str, remote_model: str, config: BenchConfig
    ) -> dict[str, Any]:
        assert self.options.binary is not None  # checked in HarnessOptions
        result = benchmark_model.run_benchmark_model(
            self.device,
            self.options.binary,
            remote_model,
            config,
            self.options.result_timeout_s,
            run_id=run_id,
        )
        return check_result(result, self.device.serial)

    def _record(
        self,
        model: ModelToBench,
        result: dict[str, Any],
        meminfo,
        started: float,
        push_s: float,
        thermal: tuple,
        battery_c: tuple,
    ) -> dict[str, Any]:
        assert self.info is not None
        warnings: list[str] = []
        latency = result.get("latency") or {}
        samples = latency.get("samples") or []
        cv = coefficient_of_variation(samples) if samples else None
        if cv is not None and cv > self.options.cv_warning:
            warnings.append(
                f"latency varies a lot (CV {cv:.0%} > {self.options.cv_warning:.0%}):"
                " close other apps, let the phone cool, or raise --runs"
            )
        rose = _thermal_rose(result, thermal)
        if rose:
            warnings.append(
                f"the thermal status rose during the run ({rose}): later samples may be throttled"
            )
        memory = result.get("memory")
        pss_source = "app"
        if memory is not None and memory.get("pss") is None and meminfo.pss_kb is not None:
            memory["pss"] = float(meminfo.pss_kb)
            pss_source = "dumpsys meminfo"
        app_measuring_s = (
            sum(
                [
                    latency.get("init") or 0.0,
                    latency.get("first_inference") or 0.0,
                    *(latency.get("warmup") or []),
                    *samples,
                ]
            )
            / 1e6
        )
        wall_s = time.monotonic() - started
        return {
            "serial": self.serial,
            "created_at": now_iso(),
            "model_name": model.name,
            "model_path": str(model.path),
            "model_sha256": model.sha256,
            "target": model.target,
            "result": result,
            "harness": {
                "wall_s": wall_s,
                "push_s": push_s,
                "app_measuring_s": app_measuring_s,
                "overhead_s": max(0.0, wall_s - app_measuring_s),
                "pss_dumpsys_kb": meminfo.pss_kb,
                "pss_source": pss_source,
                "native_heap_dumpsys_kb": meminfo.native_heap_pss_kb,
                "battery_before_c": battery_c[0],
                "battery_after_c": battery_c[1],
                "thermal_before": thermal[0].label if thermal[0] is not None else None,
                "thermal_after": thermal[1].label if thermal[1] is not None else None,
                "cv": cv,
                "warnings": warnings,
                "device_info": {"serial": self.info.serial, **self.info.as_schema_dict()},
            },
        }


def _thermal_rose(result: dict[str, Any], harness_thermal: tuple) -> str | None:
    """'light -> moderate' when the thermal status was higher after the run than before."""
    app = result.get("thermal") or {}
    pairs = [
        (ThermalStatus.from_label(app.get("before")), ThermalStatus.from_label(app.get("after"))),
        harness_thermal,
    ]
    for before, after in pairs:
        if before is not None and after is not None and after > before:
            return f"{before.label} -> {after.label}"
    return None


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


def ensure_app(device: Device, options: HarnessOptions, announce: Announce) -> None:
    """Install or update the bundled app when it is missing or at another version."""
    installed = ops.package_info(device)
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
    device: Device, options: HarnessOptions, announce: Announce
) -> tuple[ThermalStatus | None, float | None]:
    """Wait until the thermal status is none and the battery is under the threshold.

    Returns the last thermal status and battery temperature read: the run's "before".
    """
    deadline = time.monotonic() + options.cooldown_timeout_s
    announced = False
    while True:
        thermal = ops.thermal_status(device)
        temp = ops.battery(device).temperature_c
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
        time.sleep(min(options.cooldown_poll_s, max(0.0, deadline - time.monotonic())))


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


def wait_for_result(device: Device, run_id: str, options: HarnessOptions) -> str:
    """Poll `run-as PKG cat files/results/RUN.json` until it appears, the app dies, or time ends."""
    command = (
        f"run-as {quote(app_contract.PACKAGE)} cat "
        f"{quote(app_contract.result_relative_path(run_id))}"
    )
    deadline = time.monotonic() + options.result_timeout_s
    next_crash_check = time.monotonic() + CRASH_CHECK_EVERY_S
    poll_s = options.result_poll_s
    while True:
        # Each poll is bounded by what is left, so a silent device cannot stretch the wait.
        remaining = deadline - time.monotonic()
        try:
            result = device.shell(command, max(0.5, min(ops.SHORT_TIMEOUT_S, remaining)))
        except DeviceTimeoutError as error:
            if time.monotonic() < deadline:
                raise
            raise _no_result(device, run_id, options, "") from error
        if result.ok and result.stdout.strip():
            return result.stdout
        _check_run_as(result.stdout + result.stderr, device.serial)
        now = time.monotonic()
        if now >= next_crash_check:
            next_crash_check = now + CRASH_CHECK_EVERY_S
            crash = crash_excerpt(device)
            if crash:
                raise AppError(
                    f"the benchmark app crashed during run {run_id}; logcat:\n{crash}",
                    hint="the excerpt shows why; out of memory or a delegate bug are common — "
                    "try --delegate cpu or fewer threads",
                    serial=device.serial,
                )
        if now >= deadline:
            raise _no_result(device, run_id, options, _logcat(device))
        time.sleep(min(poll_s, max(0.0, deadline - now)))
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


def _logcat(device: Device) -> str:
    result = device.shell(f"logcat -d {LOGCAT_FILTER}", ops.SHORT_TIMEOUT_S)
    if not result.ok:
        return ""
    return logcat_excerpt(result.stdout, (app_contract.PACKAGE, app_contract.LOG_TAG))


def crash_excerpt(device: Device) -> str | None:
    """The logcat lines of a crash of the app, or None while it has not crashed."""
    excerpt = _logcat(device)
    crashed = any(marker in excerpt for marker in ("FATAL EXCEPTION", "has died", "Fatal signal"))
    return excerpt if crashed else None


def check_result(result: object, serial: str) -> dict[str, Any]:
    errors = schema_errors(result)
    if errors:
        raise AppError(
            "the benchmark result does not match bench_result.schema.json:\n  "
            + "\n  ".join(errors[:10]),
            hint="the app and this mobilize disagree on the result format: install the app "
            "that ships with this version (--apk)",
            serial=serial,
        )
    assert isinstance(result, dict)
    return result
