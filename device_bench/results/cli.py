"""`mobilize results list|show|compare`: the stored runs, read back."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mobilize.console import (
    add_json_option,
    add_wide_option,
    figures_console,
    json_goes_to_stdout,
    write_json,
)
from mobilize.device.errors import UsageError
from mobilize.report.results_tables import comparison_table, stored_runs_table
from mobilize.report.tables import runs_table
from mobilize.results.compare import compare_samples
from mobilize.results.store import (
    NoDatabaseError,
    StoredRun,
    default_db_path,
    get_run,
    list_runs,
    open_store,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    results = subparsers.add_parser(
        "results",
        help="stored benchmark runs",
        description="Read back the runs `mobilize bench` and `mobilize sweep` stored: list "
        "the latest, show one in full, or compare two (ratios with bootstrap 95% intervals).",
    )
    results.add_argument("--db", type=Path, default=None,
                         help=f"results database (default: {default_db_path()})")
    actions = results.add_subparsers(
        dest="results_command", metavar="ACTION", required=True,
        help="list, show or compare; `mobilize results ACTION --help` for more",
    )

    listing = actions.add_parser("list", help="the latest runs",
                                 description="The latest stored runs, newest first.")
    listing.add_argument("--limit", type=int, default=50, help="how many runs to list")
    add_json_option(listing, "the runs (without their samples)")
    add_wide_option(listing)
    listing.set_defaults(handler=cmd_results_list)

    show = actions.add_parser("show", help="one run in full",
                              description="One stored run: its figures, then the app's result "
                              "JSON and what the harness measured around it.")
    show.add_argument("run", help="run number (from `results list`) or run id, or a unique "
                      "prefix of it")
    add_json_option(show, "the run with its samples")
    add_wide_option(show)
    show.set_defaults(handler=cmd_results_show)

    compare = actions.add_parser(
        "compare", help="B against A: ratios with 95%% intervals",
        description="Median and mean latency of run B over run A, each with a 95% bootstrap "
        "interval; a ratio above 1 means B is slower.",
    )
    compare.add_argument("baseline", metavar="A", help="the baseline run (number or run id)")
    compare.add_argument("candidate", metavar="B", help="the candidate run (number or run id)")
    add_json_option(compare, "the ratios")
    compare.set_defaults(handler=cmd_results_compare)


@contextmanager
def _reading(args: argparse.Namespace, *keys: str) -> Iterator[sqlite3.Connection]:
    """The database --db names, for reading: never created (a typo must not leave folders
    and an empty database behind), and refused with exit 2 when it is not one of ours."""
    try:
        with open_store(args.db or default_db_path(), create=False) as connection:
            yield connection
    except NoDatabaseError as error:
        if not keys:
            raise
        runs = " or ".join(repr(key) for key in keys)
        raise NoDatabaseError(f"no stored run {runs}: {error.message}",
                              hint=error.hint) from error


def cmd_results_list(args: argparse.Namespace) -> int:
    with _reading(args) as connection:
        runs = list_runs(connection, args.limit)
    figures_console(args.json).print(stored_runs_table(runs, wide=args.wide))
    if args.json:
        write_json(args.json, {"runs": [_run_summary(run) for run in runs]})
    return 0


def cmd_results_show(args: argparse.Namespace) -> int:
    with _reading(args, args.run) as connection:
        run = _require_run(connection, args.run)
    record = {"serial": run.serial, "model_name": run.model_name, "result": run.result}
    out = figures_console(args.json)
    out.print(runs_table([record], title=f"Run {run.id}", wide=args.wide))
    if args.json:
        write_json(args.json, {"run": {**_run_summary(run), "result": run.result,
                                       "harness": run.harness, "samples_us": run.samples}})
    if not json_goes_to_stdout(args.json):
        out.print_json(data={"result": run.result, "harness": run.harness})
    return 0


def cmd_results_compare(args: argparse.Namespace) -> int:
    with _reading(args, args.baseline, args.candidate) as connection:
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
    figures_console(args.json).print(comparison_table(rows, title))
    if args.json:
        write_json(args.json, {"baseline": _run_summary(baseline),
                               "candidate": _run_summary(candidate),
                               "comparisons": [row.to_json() for row in rows]})
    return 0


def _run_summary(run: StoredRun) -> dict[str, Any]:
    """A stored run's columns, without the app's whole result (`results show` has it)."""
    return {
        "id": run.id, "run_id": run.run_id, "created_at": run.created_at,
        "status": run.status, "serial": run.serial, "device_model": run.device_model,
        "model_name": run.model_name, "model_sha256": run.model_sha256, "target": run.target,
        "runner": run.runner, "delegate": run.delegate,
        "delegate_applied": run.delegate_applied, "threads": run.threads,
        "p50_us": run.p50_us, "mean_us": run.mean_us, "init_us": run.init_us,
        "pss_kb": run.pss_kb,
        "peak_rss_kb": (run.result.get("memory") or {}).get("peak_rss"),
    }


def _require_run(connection: sqlite3.Connection, key: str) -> StoredRun:
    run = get_run(connection, key)
    if run is None:
        raise UsageError(
            f"no stored run {key!r}", hint="`mobilize results list` shows run numbers and ids"
        )
    return run
