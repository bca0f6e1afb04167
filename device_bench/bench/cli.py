"""The `mobilize devices` and `mobilize bench` parsers, and `bench` itself (devices: see
devices_cli)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape

from mobilize.bench.config import BenchConfig, Delegate, GpuPrecision, HarnessOptions, RunnerKind
from mobilize.bench.device_options import add_device_options, connect_options, device_targets
from mobilize.bench.devices_cli import cmd_devices
from mobilize.bench.fleet import (
    bench_on_device,
    fan_out,
    raise_device_errors,
    raise_failed_runs,
)
from mobilize.bench.model_input import ModelToBench, resolve_models
from mobilize.bench.runner import BenchSession
from mobilize.console import (
    add_json_option,
    add_wide_option,
    announce,
    figures_console,
    write_json,
)
from mobilize.device.errors import (
    UsageError,
)
from mobilize.report.tables import (
    ModelComparison,
    compare_models,
    comparison_lines,
    runs_table,
)
from mobilize.results.compare import parse_fraction
from mobilize.results.regression import check_regressions, load_baseline
from mobilize.results.store import default_db_path, open_store, save_run


def register(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser(
        "devices",
        help="list attached Android devices",
        description="List the Android devices adb can reach (USB, or HOST:PORT over TCP): "
        "model, SoC, ABI, Android version, GPU renderer, battery temperature, thermal status "
        "and the bundled benchmark app's version.",
    )
    add_device_options(devices)
    add_json_option(devices, "the devices")
    devices.set_defaults(handler=cmd_devices)

    bench = subparsers.add_parser(
        "bench",
        help="benchmark .tflite models on Android devices",
        description="Push each model to the device, run it with the bundled benchmark app "
        "(or Google's benchmark_model), pull the result and store it. Prints init, latency "
        "percentiles and peak memory per run; with several models, each against the first "
        "(ratio of medians with its 95% interval).",
    )
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
        help="which target of an export folder to bench; repeatable (default: all of them)",
    )
    bench.add_argument("--delegate", choices=[d.value for d in Delegate], default="cpu",
                       help="accelerator to ask for; a request the device cannot honour runs "
                       "on the CPU and is reported as not applied")
    bench.add_argument("--threads", type=int, default=4, help="CPU threads of the interpreter")
    bench.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    bench.add_argument("--runs", type=int, default=50, help="timed runs")
    bench.add_argument("--gpu-precision", choices=[p.value for p in GpuPrecision], default="fp16",
                       help="precision the GPU delegate may compute in")
    bench.add_argument(
        "--repeat", type=int, default=1, help="run the models K times, interleaved A B A B"
    )
    bench.add_argument(
        "--retries", type=int, default=0, help="reconnect and retry a push when the device is lost"
    )
    bench.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the app's result"
    )
    bench.add_argument("--push-timeout", type=float, default=300.0,
                       help="seconds a model push may take")
    bench.add_argument(
        "--cooldown-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the device to cool before a run (0: no gate)",
    )
    bench.add_argument("--max-battery-temp", type=float, default=40.0,
                       help="°C the battery must be under before a run starts")
    bench.add_argument(
        "--lock-timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for another benchmark on the same device",
    )
    bench.add_argument("--apk", type=Path,
                       help="the bundled app's APK, installed when missing or outdated "
                       "(default: Gradle's output)")
    bench.add_argument("--runner", choices=[r.value for r in RunnerKind], default="app",
                       help="app: the bundled benchmark app; benchmark-model: Google's binary")
    bench.add_argument("--binary", type=Path, help="benchmark_model binary for that runner")
    bench.add_argument("--profile-ops", action="store_true",
                       help="with --runner benchmark-model: time each op (the report shows the "
                       "top op types)")
    bench.add_argument("--db", type=Path, default=None,
                       help=f"results database (default: {default_db_path()})")
    add_json_option(bench, "the runs")
    add_wide_option(bench)
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
    add_device_options(bench)
    bench.set_defaults(handler=cmd_bench)


# --------------------------------------------------------------------------- bench


def cmd_bench(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, not {args.repeat}")
    config = _profiled(args)(
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
    baseline = load_baseline(db_path, args.baseline) if args.baseline else None
    models = resolve_models(args.models, args.target)
    after_run = _quality_hook(args, models, config)
    options = connect_options(args)
    targets = {target.key: target for target in device_targets(args, options, args.all_devices)}
    schedule = [model for _ in range(args.repeat) for model in models]  # A B A B
    outcomes = fan_out(
        list(targets),
        lambda key: bench_on_device(
            targets[key].serial, schedule, config, harness, targets[key].options,
            args.lock_timeout, run_saver(db_path, targets[key].adb_server), after_run, announce,
        ),
    )
    records = [record for outcome in outcomes for record in outcome.records]
    comparisons = compare_models(records)
    if records:
        _print_runs(args, records, comparisons)
    if args.json:
        write_json(args.json, {"runs": records,
                               "comparisons": [c.to_json() for c in comparisons]})
    raise_device_errors(outcomes, announce)
    raise_failed_runs(records)
    if args.check_quality:
        from mobilize.bench.quality import enforce_min_psnr

        enforce_min_psnr(records, args.min_psnr)
    if baseline is not None:
        check_regressions(baseline, records, allowed, announce)
    return 0


def run_saver(db_path: Path, adb_server: str | None) -> Callable[[dict[str, Any]], None]:
    """Saves each run as it ends, with the adb server it came through (None: adb-shell)."""

    def save(record: dict[str, Any]) -> None:
        record["harness"]["adb_server"] = adb_server
        with open_store(db_path) as connection:
            save_run(connection, record)

    return save


def _profiled(args: argparse.Namespace) -> type[BenchConfig]:
    """--profile-ops: a config that asks benchmark_model for its per-op tables."""
    if not args.profile_ops:
        return BenchConfig
    if RunnerKind(args.runner) is not RunnerKind.BENCHMARK_MODEL:
        raise UsageError(
            "--profile-ops needs --runner benchmark-model: the bundled app does not time ops",
            hint="add --runner benchmark-model --binary PATH (Google's benchmark_model)",
        )
    from mobilize.bench.benchmark_model import ProfiledConfig

    return ProfiledConfig


def _print_runs(
    args: argparse.Namespace,
    records: Sequence[dict[str, Any]],
    comparisons: Sequence[ModelComparison],
) -> None:
    """The table and the A/B lines (figures: stdout unless the JSON owns it), then the
    warnings (stderr)."""
    out = figures_console(args.json)
    out.print(runs_table(records, wide=args.wide))
    for line in comparison_lines(comparisons):
        out.print(escape(line))
    for record in records:
        for warning in (*_fallback_warnings(record), *record["harness"]["warnings"]):
            announce(f"warning: [{record['serial']}] {record['model_name']}: {warning}")
    if args.check_quality:
        from mobilize.bench.quality import summary_lines

        for line in summary_lines(records):
            announce(line)


def _fallback_warnings(record: dict[str, Any]) -> list[str]:
    """A GPU or NNAPI request that did not take the graph ran on the CPU: its figures are
    the CPU's, which a table cell alone is too easy to miss."""
    delegate = record["result"]["delegate"]
    if delegate["requested"] == Delegate.CPU.value or delegate.get("applied"):
        return []
    reason = delegate.get("message") or "the device did not apply it"
    return [f"asked for {delegate['requested']} but ran on the CPU "
            f"({delegate.get('name') or 'builtin kernels'}): {reason}"]


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
    from mobilize.bench.quality import bench_hook

    return bench_hook(models, config, args.quality_images)
