"""Rich tables for `mobilize results`: the runs kept in the results database, and
`results compare`'s ratios of a candidate's figures to a baseline's (presentation only).

Laid out with table_layout's helpers, which keep identifiers whole and latencies in
fixed-point milliseconds; one stored run shown in full reuses tables.runs_table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from mobilize.report.table_layout import (
    add_figure_column,
    add_identifier_column,
    add_text_column,
    format_mb,
    format_ms,
    format_status,
    format_text,
    new_table,
)
from mobilize.results.store import StoredRun

# --------------------------------------------------------------------------- stored runs


def stored_runs_table(runs: Sequence[StoredRun], *, wide: bool = False) -> RenderableType:
    if wide:
        return _wide_stored_runs_table(runs)
    groups: dict[str, list[StoredRun]] = {}
    for run in runs:
        groups.setdefault(run.serial, []).append(run)
    tables = [
        _compact_stored_runs_table(group, f"Stored runs on {_stored_device_label(group[0])}")
        for group in groups.values()
    ]
    if not tables:
        return _compact_stored_runs_table([], "Stored runs")
    return tables[0] if len(tables) == 1 else Group(*tables)


def _compact_stored_runs_table(runs: Sequence[StoredRun], title: str) -> Table:
    # No "when" column: the run id starts with the UTC time it was taken.
    table = new_table(title, caption="--wide: time, target, threads, memory")
    add_figure_column(table, "#")
    add_identifier_column(table, "run id")
    add_identifier_column(table, "model")
    add_text_column(table, "delegate")
    add_figure_column(table, "p50 ms")
    add_text_column(table, "status")
    for run in runs:
        table.add_row(
            str(run.id), escape(run.run_id), escape(run.model_name), _stored_delegate(run),
            format_ms(run.p50_us), format_status(run.status),
        )
    return table


def _wide_stored_runs_table(runs: Sequence[StoredRun]) -> Table:
    table = new_table("Stored runs", wide=True)
    add_figure_column(table, "#")
    add_text_column(table, "when")
    add_identifier_column(table, "device")
    add_identifier_column(table, "model")
    for header in ("target", "runner", "threads", "delegate", "status"):
        add_text_column(table, header)
    for header in ("p50 ms", "mean ms", "init ms", "PSS MB", "peak RSS MB"):
        add_figure_column(table, header)
    add_identifier_column(table, "run id")
    for run in runs:
        memory = run.result.get("memory") or {}
        table.add_row(
            str(run.id), escape(run.created_at), escape(_stored_device_label(run)),
            escape(run.model_name), escape(format_text(run.target)), escape(run.runner),
            str(run.threads), _stored_delegate(run), format_status(run.status),
            format_ms(run.p50_us), format_ms(run.mean_us), format_ms(run.init_us),
            format_mb(run.pss_kb), format_mb(memory.get("peak_rss")), escape(run.run_id),
        )
    return table


def _stored_device_label(run: StoredRun) -> str:
    return f"{run.serial} ({run.device_model})" if run.device_model else run.serial


def _stored_delegate(run: StoredRun) -> str:
    if run.delegate_applied is False:
        return f"{escape(run.delegate)} → cpu [yellow]not applied[/]"
    return escape(run.delegate)


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    baseline: float
    candidate: float
    ratio: float
    low: float
    high: float

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "baseline_us": self.baseline,
                "candidate_us": self.candidate, "ratio": self.ratio,
                "ci95": [self.low, self.high]}


def comparison_table(rows: Sequence[ComparisonRow], title: str) -> Table:
    table = new_table(title)
    add_text_column(table, "metric")
    for header in ("baseline ms", "candidate ms", "ratio", "95% CI"):
        add_figure_column(table, header)
    for row in rows:
        colour = "red" if row.low > 1.0 else "green" if row.high < 1.0 else "white"
        table.add_row(
            row.metric,
            format_ms(row.baseline),
            format_ms(row.candidate),
            f"[{colour}]{row.ratio:.3f}×[/]",
            f"{row.low:.3f} – {row.high:.3f}",
        )
    return table
