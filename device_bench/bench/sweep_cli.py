"""`mobilize sweep EXPORT_DIR` and `mobilize report RUN_ID ...`: a thin layer over the library."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from mobilize.bench.cli import run_saver
from mobilize.bench.config import BenchConfig, Delegate, GpuPrecision, HarnessOptions
from mobilize.bench.device_options import add_device_options, connect_options, device_targets
from mobilize.bench.model_input import resolve_models
from mobilize.bench.quality_reference import DEFAULT_QUALITY_SAMPLES, prepare_reference
from mobilize.bench.runner import BenchSession
from mobilize.bench.sweep import (
    DEFAULT_MIN_PSNR_DB,
    Candidate,
    Recommendation,
    recommend,
    require_winner,
    run_sweep,
)
from mobilize.bench.sweep_progress import RunClock, eta_text
from mobilize.console import add_json_option, announce, err_console, figures_console, write_json
from mobilize.contract.metadata import read_metadata
from mobilize.device.connect import open_device
from mobilize.device.errors import UsageError
from mobilize.device.lock import device_lock
from mobilize.report import provenance
from mobilize.report.html import ReportInput, write_report
from mobilize.report.table_layout import (
    add_figure_column,
    add_identifier_column,
    add_text_column,
    format_ms,
    new_table,
)
from mobilize.results.cli import _require_run
from mobilize.results.store import default_db_path, open_store

DEFAULT_REPORT_NAME = "sweep_report.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="bench every variant of an export on every delegate and recommend one to ship",
        description="Bench every .tflite of an export folder on every delegate asked for, in "
        "interleaved rounds, run held-out inputs on the phone and compare its output with "
        "PyTorch, then recommend the fastest variant that loads, runs on its delegate and "
        "keeps the picture. Writes an HTML report.",
    )
    sweep.add_argument("export_dir", type=Path, metavar="EXPORT_DIR",
                       help="a folder `mobilize export` wrote (with metadata.json)")
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
        "--quality-images", type=Path, metavar="DIR",
        help="held-out inputs (png/jpg or .npy) (default: the exporter's held-out photographs)",
    )
    sweep.add_argument("--quality-samples", type=int, default=DEFAULT_QUALITY_SAMPLES,
                       help="held-out inputs run on the phone per variant")
    sweep.add_argument("--threads", type=int, default=4, help="CPU threads of the interpreter")
    sweep.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    sweep.add_argument("--runs", type=int, default=50, help="timed runs per round")
    sweep.add_argument("--repeat", type=int, default=2, help="rounds of interleaved runs")
    sweep.add_argument("--gpu-precision", choices=[p.value for p in GpuPrecision], default="fp16",
                       help="precision the GPU delegate may compute in")
    sweep.add_argument("--timeout", type=float, default=600.0,
                       help="seconds to wait for the app's result")
    sweep.add_argument("--cooldown-timeout", type=float, default=300.0,
                       help="seconds to wait for the device to cool before a run (0: no gate)")
    sweep.add_argument("--max-battery-temp", type=float, default=40.0,
                       help="°C the battery must be under before a run starts")
    sweep.add_argument("--lock-timeout", type=float, default=3600.0,
                       help="seconds to wait for another benchmark on the same device")
    sweep.add_argument("--apk", type=Path,
                       help="the bundled app's APK, installed when missing or outdated "
                       "(default: Gradle's output)")
    sweep.add_argument("--db", type=Path, default=None,
                       help=f"results database (default: {default_db_path()})")
    add_json_option(sweep, "the verdicts, the recommendation and the runs")
    add_device_options(sweep)
    sweep.set_defaults(handler=cmd_sweep)

    report = subparsers.add_parser(
        "report", help="an HTML report of stored runs",
        description="One self-contained HTML file (plots, tables, image strips) of stored "
        "runs, for sharing; it opens offline, without JavaScript.",
    )
    report.add_argument("runs", nargs="+", metavar="RUN_ID",
                        help="stored runs: numbers or run ids (see `mobilize results list`)")
    report.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="the HTML file to write"
    )
    report.add_argument("--title", default="mobilize benchmark report",
                        help="the report's heading")
    report.add_argument("--db", type=Path, default=None,
                        help=f"results database (default: {default_db_path()})")
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
        else (metadata.min_psnr_db or DEFAULT_MIN_PSNR_DB)
    )
    min_psnr_from = (
        "--min-psnr" if args.min_psnr is not None
        else "the export's --min-psnr" if metadata.min_psnr_db else "the default"
    )
    announce(f"computing PyTorch reference outputs for {args.export_dir.name}")
    reference = prepare_reference(args.export_dir, args.quality_images, args.quality_samples)
    options = connect_options(args)
    targets = device_targets(args, options, all_devices=False)
    if len(targets) != 1:
        raise UsageError("a sweep runs on one device", hint="pick it with --serial")
    serial, options = targets[0].serial, targets[0].options  # opened where it was found
    save = run_saver(args.db or default_db_path(), targets[0].adb_server)

    with device_lock(serial, args.lock_timeout, announce=announce):
        session = BenchSession(
            lambda _old: open_device(serial, options, announce), harness, announce
        )
        try:
            with ProgressBar() as bar:
                sweep = run_sweep(
                    session,
                    models,
                    delegates,
                    config,
                    reference,
                    repeat=args.repeat,
                    announce=announce,
                    save=save,
                    progress=bar,
                )
        finally:
            session.close()
    recommendation = recommend(sweep, float(min_psnr))
    out = figures_console(args.json)
    out.print(verdict_table(recommendation))
    for note in (*recommendation.notes, *recommendation.skipped_delegates):
        out.print(f"[yellow]note:[/] {escape(note)}")
    report_path = args.report or args.export_dir / DEFAULT_REPORT_NAME
    title = f"mobilize sweep: {args.export_dir.name} on {sweep.device.model or serial}"
    settings = {
        "device": f"{sweep.device.model or '-'} ({serial})",
        "rounds (--repeat)": args.repeat,
        "delegates asked for": ", ".join(d.value for d in delegates),
        "quality gate": f"worst single-image PSNR >= {float(min_psnr):g} dB ({min_psnr_from})",
        "quality inputs": f"{reference.count}: {reference.source}",
        "cool-down gate": f"up to {args.cooldown_timeout:g} s for the battery to be under "
        f"{args.max_battery_temp:g} °C",
    }
    origin = provenance.build(sweep.records, metadata, settings)
    write_report(report_path, ReportInput(title, tuple(sweep.records), recommendation, origin))
    announce(f"report: {report_path}")
    if args.json:
        write_json(args.json, sweep_json(recommendation, sweep.records, serial, report_path))
    require_winner(recommendation)
    out.print(f"[bold green]recommendation:[/] {escape(recommendation.summary())}")
    return 0


def sweep_json(
    recommendation: Recommendation, records: Sequence[dict[str, Any]], serial: str,
    report_path: Path,
) -> dict[str, Any]:
    winner = recommendation.winner
    return {
        "serial": serial,
        "min_psnr_db": recommendation.min_psnr_db,
        "winner": None if winner is None else _candidate_json(winner),
        "summary": recommendation.summary(),
        "verdicts": [
            {**_candidate_json(v.candidate),
             "verdict": "winner" if v.reason is None else v.reason.value, "detail": v.detail}
            for v in recommendation.verdicts
        ],
        "notes": list(recommendation.notes),
        "skipped_delegates": list(recommendation.skipped_delegates),
        "report": str(report_path),
        "runs": list(records),
    }


def _candidate_json(candidate: Candidate) -> dict[str, Any]:
    return {
        "variant": candidate.variant, "model": str(candidate.model.path),
        "target": candidate.model.target, "delegate": candidate.delegate.value,
        "status": candidate.status, "applied": candidate.applied,
        "p50_ms": candidate.p50_ms, "peak_rss_mb": candidate.peak_rss_mb,
        "size_kb": candidate.size_kb, "worst_psnr_db": candidate.psnr_db,
        "pooled_psnr_db": candidate.pooled_psnr_db,
    }


def verdict_table(recommendation: Recommendation) -> Table:
    table = new_table(
        f"Sweep (quality threshold {recommendation.min_psnr_db:g} dB worst-image PSNR)"
    )
    add_identifier_column(table, "variant")
    add_text_column(table, "delegate")
    for header in ("p50\nms", "peak\nRSS MB", "file\nKB", "worst\nPSNR dB"):
        add_figure_column(table, header)
    add_text_column(table, "verdict")
    for verdict in recommendation.verdicts:
        c = verdict.candidate
        reason = (
            "[bold green]ship this[/]"
            if verdict.reason is None
            else escape(f"{verdict.reason.value}: {verdict.detail}")
        )
        table.add_row(
            escape(c.variant),
            c.delegate.value,
            "-" if c.p50_ms is None else format_ms(c.p50_ms * 1000.0),
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
            "model_path": getattr(run, "model_path", None),  # where the store keeps it
            "target": run.target,
            "result": run.result,
            "harness": run.harness,
        }
        for run in runs
    )
    write_report(args.out, ReportInput(args.title, records,
                                       provenance=provenance.build(records)))
    announce(f"report: {args.out}")
    return 0


class ProgressBar:
    """The sweep's progress on stderr: runs done of the total, time so far and the ETA from
    the runs so far, as a live bar on a terminal (each run's start line is printed anyway)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or err_console
        self.bar: Progress | None = None
        self.task: Any = None
        self.clock: RunClock | None = None

    def __enter__(self) -> ProgressBar:
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("runs"), TimeElapsedColumn(), _EtaColumn(self),
                console=self.console, transient=True, refresh_per_second=2,
            )
            self.bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def eta(self) -> str:
        return eta_text(self.clock.eta_s if self.clock else None)

    def run_started(self, clock: RunClock, label: str) -> None:
        self.clock = clock
        if self.bar is None:
            return
        if self.task is None:
            self.task = self.bar.add_task(escape(label), total=clock.total)
        self.bar.update(self.task, description=escape(label), total=clock.total,
                        completed=clock.done)

    def run_finished(self, clock: RunClock) -> None:
        self.clock = clock
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, total=clock.total, completed=clock.done)


class _EtaColumn(ProgressColumn):
    """The ETA from the sweep's own clock, counting down while a long run is under way."""

    def __init__(self, owner: ProgressBar) -> None:
        super().__init__()
        self.owner = owner

    def render(self, task: Any) -> Text:
        return Text(self.owner.eta(), style="progress.remaining")
