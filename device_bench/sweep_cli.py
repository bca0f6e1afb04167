"""`mobilize sweep EXPORT_DIR` and `mobilize report RUN_ID ...`: a thin layer over the library."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from device_bench.cli import (
    _add_device_options,
    _connect_options,
    _require_run,
    _serials,
    announce,
    console,
)
from device_bench.connect import open_device
from device_bench.errors import UsageError
from device_bench.html_report import ReportInput, write_report
from device_bench.lock import device_lock
from device_bench.model_input import resolve_models
from device_bench.quality import DEFAULT_QUALITY_SAMPLES, prepare_reference, read_metadata
from device_bench.runner import BenchConfig, BenchSession, Delegate, GpuPrecision, HarnessOptions
from device_bench.store import default_db_path, open_store, save_run
from device_bench.sweep import (
    DEFAULT_MIN_PSNR_DB,
    Recommendation,
    recommend,
    require_winner,
    run_sweep,
)

DEFAULT_REPORT_NAME = "sweep_report.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="bench every variant of an export on every delegate and recommend one to ship",
    )
    sweep.add_argument("export_dir", type=Path, metavar="EXPORT_DIR")
    sweep.add_argument(
        "--delegates",
        default="cpu,gpu,nnapi",
        help=f"comma-separated, of {', '.join(d.value for d in Delegate)}",
    )
    sweep.add_argument(
        "--min-psnr",
        type=float,
        default=None,
        metavar="DB",
        help="dB of the phone's output vs PyTorch a variant must keep (default: the export's "
        f"--min-psnr, else {DEFAULT_MIN_PSNR_DB:g})",
    )
    sweep.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help=f"HTML report (default: EXPORT_DIR/{DEFAULT_REPORT_NAME})",
    )
    sweep.add_argument(
        "--quality-images", type=Path, metavar="DIR", help="held-out inputs (png/jpg or .npy)"
    )
    sweep.add_argument("--quality-samples", type=int, default=DEFAULT_QUALITY_SAMPLES)
    sweep.add_argument("--threads", type=int, default=4)
    sweep.add_argument("--warmup", type=int, default=5)
    sweep.add_argument("--runs", type=int, default=50)
    sweep.add_argument("--repeat", type=int, default=2, help="rounds of interleaved runs")
    sweep.add_argument("--gpu-precision", choices=[p.value for p in GpuPrecision], default="fp16")
    sweep.add_argument("--timeout", type=float, default=600.0)
    sweep.add_argument("--cooldown-timeout", type=float, default=300.0)
    sweep.add_argument("--max-battery-temp", type=float, default=40.0)
    sweep.add_argument("--lock-timeout", type=float, default=3600.0)
    sweep.add_argument("--apk", type=Path)
    sweep.add_argument("--db", type=Path, default=None, help=f"default: {default_db_path()}")
    _add_device_options(sweep)
    sweep.set_defaults(handler=cmd_sweep)

    report = subparsers.add_parser("report", help="an HTML report of stored runs")
    report.add_argument("runs", nargs="+", metavar="RUN_ID")
    report.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="the HTML file to write"
    )
    report.add_argument("--title", default="mobilize benchmark report")
    report.add_argument("--db", type=Path, default=None, help=f"default: {default_db_path()}")
    report.set_defaults(handler=cmd_report)


def parse_delegates(text: str) -> list[Delegate]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {d.value: d for d in Delegate}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UsageError(
            f"--delegates {text!r}: unknown {', '.join(unknown) or '(empty)'}",
            hint=f"a comma-separated list of {', '.join(known)}, e.g. --delegates cpu,gpu",
        )
    return list(dict.fromkeys(known[name] for name in names))


def cmd_sweep(args: argparse.Namespace) -> int:
    delegates = parse_delegates(args.delegates)
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, not {args.repeat}")
    if not args.export_dir.is_dir():
        raise UsageError(
            f"{args.export_dir} is not an export folder",
            hint="pass the folder `mobilize export --out DIR` wrote (with metadata.json)",
        )
    config = BenchConfig(
        threads=args.threads,
        warmup_runs=args.warmup,
        num_runs=args.runs,
        gpu_precision=GpuPrecision(args.gpu_precision),
    )
    harness = HarnessOptions(
        apk=args.apk,
        result_timeout_s=args.timeout,
        cooldown_timeout_s=args.cooldown_timeout,
        max_battery_temp_c=args.max_battery_temp,
    )
    models = resolve_models([args.export_dir])
    metadata = read_metadata(args.export_dir)
    min_psnr = (
        args.min_psnr
        if args.min_psnr is not None
        else (metadata.get("min_psnr_db") or DEFAULT_MIN_PSNR_DB)
    )
    announce(f"computing PyTorch reference outputs for {args.export_dir.name}")
    reference = prepare_reference(args.export_dir, args.quality_images, args.quality_samples)
    options = _connect_options(args)
    serials = _serials(args, options, all_devices=False)
    if len(serials) != 1:
        raise UsageError("a sweep runs on one device", hint="pick it with --serial")
    serial = serials[0]
    db_path: Path = args.db or default_db_path()

    def save(record: dict[str, Any]) -> None:
        with open_store(db_path) as connection:
            save_run(connection, record)

    with device_lock(serial, args.lock_timeout, announce=announce):
        session = BenchSession(
            lambda _old: open_device(serial, options, announce), harness, announce
        )
        try:
            sweep = run_sweep(
                session,
                models,
                delegates,
                config,
                reference,
                repeat=args.repeat,
                announce=announce,
                save=save,
            )
        finally:
            session.close()
    recommendation = recommend(sweep, float(min_psnr))
    console.print(verdict_table(recommendation))
    for note in (*recommendation.notes, *recommendation.skipped_delegates):
        console.print(f"[yellow]note:[/] {escape(note)}")
    report_path = args.report or args.export_dir / DEFAULT_REPORT_NAME
    title = f"mobilize sweep: {args.export_dir.name} on {sweep.device.model or serial}"
    write_report(report_path, ReportInput(title, tuple(sweep.records), recommendation))
    announce(f"report: {report_path}")
    require_winner(recommendation)
    console.print(f"[bold green]recommendation:[/] {escape(recommendation.summary())}")
    return 0


def verdict_table(recommendation: Recommendation) -> Table:
    table = Table(title=f"Sweep (quality threshold {recommendation.min_psnr_db:g} dB PSNR)")
    for column in ("variant", "delegate", "p50 ms", "peak RSS MB", "file KB", "PSNR dB", "verdict"):
        table.add_column(
            column, justify="right" if column.endswith(("ms", "MB", "KB", "dB")) else "left"
        )
    for verdict in recommendation.verdicts:
        c = verdict.candidate
        reason = (
            "[bold green]ship this[/]"
            if verdict.reason is None
            else escape(f"{verdict.reason.value}: {verdict.detail}")
        )
        table.add_row(
            c.variant,
            c.delegate.value,
            "-" if c.p50_ms is None else f"{c.p50_ms:.2f}",
            "-" if c.peak_rss_mb is None else f"{c.peak_rss_mb:.1f}",
            f"{c.size_kb:.1f}",
            "-" if c.quality is None else ("exact" if c.psnr_db is None else f"{c.psnr_db:.1f}"),
            reason,
        )
    return table


def cmd_report(args: argparse.Namespace) -> int:
    db_path: Path = args.db or default_db_path()
    if not db_path.is_file():
        raise UsageError(
            f"no results database at {db_path}",
            hint="run `mobilize bench` or `mobilize sweep` first, or pass --db",
        )
    with open_store(db_path) as connection:
        runs = [_require_run(connection, key) for key in args.runs]
    records = tuple(
        {
            "serial": run.serial,
            "created_at": run.created_at,
            "model_name": run.model_name,
            "target": run.target,
            "result": run.result,
            "harness": run.harness,
        }
        for run in runs
    )
    write_report(args.out, ReportInput(args.title, records))
    announce(f"report: {args.out}")
    return 0
