"""`mobilize devices`, `mobilize bench` and `mobilize results`: a thin layer over the library."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from device_bench import app_contract, ops
from device_bench.compare import compare_samples, find_regression, parse_fraction
from device_bench.connect import choose_serials, discover, open_device
from device_bench.device import Device
from device_bench.errors import (
    EXIT_DEVICE_ERROR,
    AppError,
    DeviceError,
    RegressionError,
    UsageError,
)
from device_bench.keys import default_key_path
from device_bench.lock import device_lock
from device_bench.model_input import ModelToBench, resolve_models
from device_bench.report import (
    DeviceRow,
    comparison_table,
    devices_table,
    runs_table,
    stored_runs_table,
)
from device_bench.runner import (
    BenchConfig,
    BenchSession,
    Delegate,
    GpuPrecision,
    HarnessOptions,
    RunnerKind,
)
from device_bench.store import default_db_path, get_run, list_runs, open_store, save_run
from device_bench.store import write_json_atomically as write_json
from device_bench.transports import (
    DEFAULT_ADB_SERVER_PORT,
    DEFAULT_AUTH_TIMEOUT_S,
    ConnectOptions,
    Transport,
)

# Tables are wide: in a pipe or a log file rich would fold them to 80 columns.
PIPE_WIDTH = 220
err_console = Console(stderr=True, highlight=False)
_print_lock = threading.Lock()


class _Stdout:
    """A rich console on whatever sys.stdout is now, wide when it is not a terminal."""

    def print(self, *objects: Any, **options: Any) -> None:
        self._console().print(*objects, **options)

    def print_json(self, **options: Any) -> None:
        self._console().print_json(**options)

    @staticmethod
    def _console() -> Console:
        width = None if sys.stdout.isatty() else PIPE_WIDTH
        return Console(highlight=False, width=width)


console = _Stdout()


def announce(message: str) -> None:
    with _print_lock:
        err_console.print(escape(message), soft_wrap=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="list attached Android devices")
    _add_device_options(devices)
    devices.set_defaults(handler=cmd_devices)

    bench = subparsers.add_parser("bench", help="benchmark .tflite models on Android devices")
    bench.add_argument(
        "models",
        nargs="+",
        type=Path,
        metavar="MODEL",
        help="a .tflite file or an export folder with metadata.json",
    )
    bench.add_argument(
        "--target",
        action="append",
        default=[],
        help="which target of an export folder to bench (default: all)",
    )
    bench.add_argument("--delegate", choices=[d.value for d in Delegate], default="cpu")
    bench.add_argument("--threads", type=int, default=4)
    bench.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    bench.add_argument("--runs", type=int, default=50, help="timed runs")
    bench.add_argument("--gpu-precision", choices=[p.value for p in GpuPrecision], default="fp16")
    bench.add_argument(
        "--repeat", type=int, default=1, help="run the models K times, interleaved A B A B"
    )
    bench.add_argument(
        "--retries", type=int, default=0, help="reconnect and retry a push when the device is lost"
    )
    bench.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the app's result"
    )
    bench.add_argument("--push-timeout", type=float, default=300.0)
    bench.add_argument(
        "--cooldown-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the device to cool before a run (0: no gate)",
    )
    bench.add_argument("--max-battery-temp", type=float, default=40.0, help="°C")
    bench.add_argument(
        "--lock-timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for another benchmark on the same device",
    )
    bench.add_argument("--apk", type=Path, help="the bundled app's APK (default: Gradle's output)")
    bench.add_argument("--runner", choices=[r.value for r in RunnerKind], default="app")
    bench.add_argument("--binary", type=Path, help="benchmark_model binary for that runner")
    bench.add_argument("--db", type=Path, default=None, help=f"default: {default_db_path()}")
    bench.add_argument("--json", type=Path, help="also write the runs to this JSON file")
    bench.add_argument("--baseline", help="a stored run to compare against (number or run id)")
    bench.add_argument(
        "--max-regression",
        default="10%",
        help="with --baseline: exit non-zero when slower by more than this",
    )
    bench.add_argument("--all-devices", action="store_true", help="bench on every device")
    bench.add_argument(
        "--check-quality",
        action="store_true",
        help="also run held-out inputs on the phone and compare with PyTorch (export folders)",
    )
    bench.add_argument(
        "--quality-images", type=Path, help="held-out inputs for --check-quality (png/jpg or .npy)"
    )
    bench.add_argument(
        "--min-psnr", type=float, metavar="DB", help="with --check-quality: exit 6 below this"
    )
    _add_device_options(bench)
    bench.set_defaults(handler=cmd_bench)

    results = subparsers.add_parser("results", help="stored benchmark runs")
    results.add_argument("--db", type=Path, default=None, help=f"default: {default_db_path()}")
    actions = results.add_subparsers(dest="results_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the latest runs")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=cmd_results_list)
    show = actions.add_parser("show", help="one run in full")
    show.add_argument("run")
    show.set_defaults(handler=cmd_results_show)
    compare = actions.add_parser("compare", help="B against A: ratios with 95%% intervals")
    compare.add_argument("baseline", metavar="A")
    compare.add_argument("candidate", metavar="B")
    compare.set_defaults(handler=cmd_results_compare)


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serial",
        "-s",
        action="append",
        default=[],
        help="device serial (HOST:PORT for TCP); repeat for several devices",
    )
    parser.add_argument(
        "--transport",
        choices=[t.value for t in Transport],
        default="auto",
        help="auto: adb-shell, or the stock adb client when an adb server holds the USB interface",
    )
    parser.add_argument(
        "--adb-key",
        type=Path,
        default=None,
        help="ADB private key (default: ~/.android/adbkey, created if missing)",
    )
    parser.add_argument(
        "--auth-timeout",
        type=float,
        default=DEFAULT_AUTH_TIMEOUT_S,
        help='seconds to wait for "Allow" on the phone',
    )
    parser.add_argument(
        "--adb-server-port",
        type=int,
        default=DEFAULT_ADB_SERVER_PORT,
        help="port of the stock adb server",
    )


def _connect_options(args: argparse.Namespace) -> ConnectOptions:
    return ConnectOptions(
        key_path=args.adb_key or default_key_path(),
        transport=Transport(args.transport),
        auth_timeout_s=args.auth_timeout,
        adb_server_port=args.adb_server_port,
    )


def _serials(args: argparse.Namespace, options: ConnectOptions, all_devices: bool) -> list[str]:
    available = [] if args.serial else discover(options)
    return choose_serials(
        args.serial, os.environ.get("ANDROID_SERIAL"), available, all_devices=all_devices
    )


# --------------------------------------------------------------------------- devices


def cmd_devices(args: argparse.Namespace) -> int:
    options = _connect_options(args)
    unusable: list[DeviceRow] = []
    if args.serial:
        serials = list(dict.fromkeys(args.serial))
    else:
        available = discover(options)
        unusable = [
            DeviceRow(entry.serial, *[None] * 10, error=f"{entry.state} (see `adb devices`)")
            for entry in available
            if entry.state != "device"
        ]
        env_serial = os.environ.get("ANDROID_SERIAL")
        if unusable and not any(entry.state == "device" for entry in available):
            serials = []
        else:
            serials = choose_serials([], env_serial, available, all_devices=not env_serial)
    outcomes = _parallel(serials, lambda serial: _describe(serial, options))
    if len(outcomes) == 1 and not unusable and isinstance(outcomes[0], DeviceError):
        raise outcomes[0]  # one device: its own message and hint say what to do
    rows = [
        outcome if isinstance(outcome, DeviceRow) else _error_row(serial, outcome)
        for serial, outcome in zip(serials, outcomes, strict=True)
    ]
    console.print(devices_table(rows + unusable))
    return 0 if all(row.error is None for row in rows + unusable) else EXIT_DEVICE_ERROR


def _describe(serial: str, options: ConnectOptions) -> DeviceRow | DeviceError:
    try:
        device = open_device(serial, options, announce)
    except DeviceError as error:
        return error
    try:
        return describe_device(device)
    except DeviceError as error:
        return error
    finally:
        device.close()


def _error_row(serial: str, error: DeviceError) -> DeviceRow:
    return DeviceRow(serial, *[None] * 10, error=error.message.splitlines()[0])


def describe_device(device: Device) -> DeviceRow:
    info = ops.device_info(device)
    thermal = ops.thermal_status(device)
    app = ops.package_info(device)
    return DeviceRow(
        serial=device.serial,
        model=info.model,
        board=info.board,
        soc=info.soc,
        abi=",".join(info.abis) or info.abi,
        android=info.android_version,
        sdk=info.sdk,
        gpu=info.gpu_renderer,
        battery_c=ops.battery(device).temperature_c,
        thermal=thermal.label if thermal is not None else None,
        app=None
        if app is None
        else f"{app.version_name} ({app.version_code})"
        + ("" if app.version_code == app_contract.APP_VERSION_CODE else " [yellow]outdated[/]"),
    )


# --------------------------------------------------------------------------- bench


@dataclass
class DeviceOutcome:
    serial: str
    records: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None


def cmd_bench(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, not {args.repeat}")
    config = BenchConfig(
        Delegate(args.delegate),
        args.threads,
        args.warmup,
        args.runs,
        GpuPrecision(args.gpu_precision),
    )
    harness = HarnessOptions(
        runner=RunnerKind(args.runner),
        binary=args.binary,
        apk=args.apk,
        push_timeout_s=args.push_timeout,
        result_timeout_s=args.timeout,
        retries=args.retries,
        cooldown_timeout_s=args.cooldown_timeout,
        max_battery_temp_c=args.max_battery_temp,
    )
    allowed = parse_fraction(args.max_regression)
    db_path: Path = args.db or default_db_path()
    baseline = _load_baseline(db_path, args.baseline) if args.baseline else None
    models = resolve_models(args.models, args.target)
    after_run = _quality_hook(args, models, config)
    options = _connect_options(args)
    serials = _serials(args, options, all_devices=args.all_devices)
    schedule = [model for _ in range(args.repeat) for model in models]  # A B A B

    def save(record: dict[str, Any]) -> None:
        with open_store(db_path) as connection:
            save_run(connection, record)

    outcomes = _parallel(
        serials,
        lambda serial: bench_on_device(
            serial, schedule, config, harness, options, args.lock_timeout, save, after_run
        ),
    )
    records = [record for outcome in outcomes for record in outcome.records]
    if records:
        console.print(runs_table(records))
        for record in records:
            for warning in record["harness"]["warnings"]:
                announce(f"warning: [{record['serial']}] {record['model_name']}: {warning}")
        if args.check_quality:
            from device_bench.quality import summary_lines

            for line in summary_lines(records):
                announce(line)
    if args.json:
        write_json(args.json, {"runs": records})
    _raise_device_errors(outcomes)
    _raise_failed_runs(records)
    if args.check_quality:
        from device_bench.quality import enforce_min_psnr

        enforce_min_psnr(records, args.min_psnr)
    if baseline is not None:
        _check_regressions(baseline, records, allowed)
    return 0


def _quality_hook(
    args: argparse.Namespace, models: Sequence[ModelToBench], config: BenchConfig
) -> Callable[[BenchSession, ModelToBench, dict[str, Any]], dict[str, Any]] | None:
    """--check-quality: PyTorch references computed before any device is touched (the
    quality module imports torch, so only then)."""
    if not args.check_quality:
        if args.min_psnr is not None or args.quality_images is not None:
            raise UsageError(
                "--min-psnr and --quality-images need --check-quality",
                hint="add --check-quality to compare the phone's output with PyTorch",
            )
        return None
    if RunnerKind(args.runner) is not RunnerKind.APP:
        raise UsageError(
            "--check-quality runs the held-out inputs through the bundled app; "
            "benchmark_model writes no outputs",
            hint="drop --runner benchmark-model, or bench quality in a separate app run",
        )
    from device_bench.quality import bench_hook

    return bench_hook(models, config, args.quality_images)


def bench_on_device(
    serial: str,
    schedule: Sequence[ModelToBench],
    config: BenchConfig,
    harness: HarnessOptions,
    options: ConnectOptions,
    lock_timeout: float,
    save: Callable[[dict[str, Any]], None],
    after_run: Callable[[BenchSession, ModelToBench, dict[str, Any]], dict[str, Any]] | None = None,
) -> DeviceOutcome:
    """One device's worker: hold its lock, run the schedule, save each run as it ends."""
    outcome = DeviceOutcome(serial)
    try:
        with device_lock(serial, lock_timeout, announce=announce):
            session = BenchSession(
                lambda _old: open_device(serial, options, announce), harness, announce
            )
            try:
                session.prepare()
                for model in schedule:
                    announce(
                        f"[{serial}] {model.name}: {config.delegate.value}, {config.num_runs} runs"
                    )
                    record = session.run(model, config)
                    if after_run is not None:  # --check-quality: the phone's output vs PyTorch
                        record = after_run(session, model, record)
                    save(record)
                    outcome.records.append(record)
            finally:
                session.close()
    except DeviceError as error:
        outcome.error = error
    except UsageError as error:
        outcome.error = error
    return outcome


def _parallel(serials: Sequence[str], work: Callable[[str], Any]) -> list[Any]:
    if len(serials) == 1:
        return [work(serials[0])]
    with ThreadPoolExecutor(max_workers=len(serials), thread_name_prefix="device") as pool:
        return list(pool.map(work, serials))


def _raise_device_errors(outcomes: Sequence[DeviceOutcome]) -> None:
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if not failed:
        return
    if len(failed) == 1 and len(outcomes) == 1:
        raise failed[0].error  # type: ignore[misc]
    for outcome in failed:
        announce(f"error: [{outcome.serial}] {outcome.error}")
    raise DeviceError(
        f"{len(failed)} of {len(outcomes)} devices failed: "
        + ", ".join(outcome.serial for outcome in failed),
        hint="the errors above say why; runs that finished on other devices were saved",
    )


def _raise_failed_runs(records: Sequence[dict[str, Any]]) -> None:
    failed = [record for record in records if record["result"]["status"] != app_contract.STATUS_OK]
    if not failed:
        return
    lines = [
        f"{r['model_name']} on {r['serial']}: {r['result']['status']}: {r['result']['message']}"
        for r in failed
    ]
    statuses = {record["result"]["status"] for record in failed}
    raise AppError(
        f"{len(failed)} run(s) failed on the device:\n  " + "\n  ".join(lines),
        hint=" ".join(FAILURE_HINTS.get(status, "") for status in sorted(statuses)).strip() or None,
    )


FAILURE_HINTS = {
    "model_not_found": "The pushed model vanished from the device: check its free space.",
    "model_load_failed": "The runtime could not load the model: re-export it (ops this "
    "runtime lacks, or a damaged file).",
    "delegate_failed": "The delegate refused the model: try --delegate cpu, or for GPU "
    "--gpu-precision fp32.",
    "inference_failed": "The model loaded but did not run: the message above says why.",
    "out_of_memory": "The device ran out of memory: try a smaller input, fewer --threads, "
    "or --delegate cpu.",
    "invalid_arguments": "The runner refused its settings: check --threads/--runs/--warmup.",
}


def _load_baseline(db_path: Path, key: str):
    with open_store(db_path) as connection:
        run = get_run(connection, key)
    if run is None:
        raise UsageError(
            f"no stored run {key!r} in {db_path}",
            hint="`mobilize results list` shows the stored runs",
        )
    if not run.samples:
        raise UsageError(f"run {key} has no latency samples to compare against")
    return run


def _check_regressions(baseline, records: Sequence[dict[str, Any]], allowed: float) -> None:
    found = []
    for record in records:
        samples = (record["result"].get("latency") or {}).get("samples") or []
        regression = find_regression(baseline.samples, samples, allowed) if samples else None
        if regression:
            found.append(f"{record['model_name']} on {record['serial']}: {regression.describe()}")
    if found:
        raise RegressionError(
            f"slower than baseline run {baseline.id} ({baseline.model_name}):\n  "
            + "\n  ".join(found),
            hint="compare in detail with `mobilize results compare A B`",
        )
    announce(f"no regression against run {baseline.id} (allowed {allowed:.0%})")


# --------------------------------------------------------------------------- results


def cmd_results_list(args: argparse.Namespace) -> int:
    with open_store(args.db or default_db_path()) as connection:
        runs = list_runs(connection, args.limit)
    console.print(stored_runs_table(runs))
    return 0


def cmd_results_show(args: argparse.Namespace) -> int:
    with open_store(args.db or default_db_path()) as connection:
        run = _require_run(connection, args.run)
    console.print(
        runs_table(
            [{"serial": run.serial, "model_name": run.model_name, "result": run.result}],
            title=f"Run {run.id}",
        )
    )
    console.print_json(data={"result": run.result, "harness": run.harness})
    return 0


def cmd_results_compare(args: argparse.Namespace) -> int:
    with open_store(args.db or default_db_path()) as connection:
        baseline = _require_run(connection, args.baseline)
        candidate = _require_run(connection, args.candidate)
    if not baseline.samples or not candidate.samples:
        raise UsageError(
            "both runs need latency samples to compare: a failed run has none, and "
            "benchmark_model prints only aggregates",
            hint="compare two successful runs of the bundled app (`mobilize results list`)",
        )
    rows = compare_samples(baseline.samples, candidate.samples)
    title = (
        f"run {candidate.id} ({candidate.model_name}, {candidate.delegate}) against "
        f"run {baseline.id} ({baseline.model_name}, {baseline.delegate}); ratio > 1: slower"
    )
    console.print(comparison_table(rows, title))
    return 0


def _require_run(connection, key: str):
    run = get_run(connection, key)
    if run is None:
        raise UsageError(
            f"no stored run {key!r}", hint="`mobilize results list` shows run numbers and ids"
        )
    return run
