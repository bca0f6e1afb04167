"""Rich tables for `mobilize devices` and `mobilize bench`: the devices, the runs just benched
(from the runner, or one run read back from the store), and the A/B summary of each model
against the first one benched (presentation only).

Laid out with table_layout's helpers, which keep identifiers whole and latencies in
fixed-point milliseconds; the tables of the results database are in results_tables.py.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
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
from mobilize.results.stats import ratio_confidence_interval

# --------------------------------------------------------------------------- devices


@dataclass(frozen=True)
class DeviceRow:
    serial: str
    model: str | None
    board: str | None
    soc: str | None
    abi: str | None
    android: str | None
    sdk: int | None
    gpu: str | None
    battery_c: float | None
    thermal: str | None
    app: str | None  # "0.1.0 (1)" or None when not installed
    error: str | None = None
    app_outdated: bool = False


def devices_table(rows: Sequence[DeviceRow]) -> Table:
    table = new_table("Android devices")
    add_identifier_column(table, "serial")
    for header in ("model / SoC", "Android / ABI", "GPU renderer", "battery thermal",
                   "bench app"):
        add_text_column(table, header)
    for row in rows:
        if row.error:
            table.add_row(escape(row.serial), f"[red]{escape(row.error)}[/]", *[""] * 4)
            continue
        table.add_row(
            escape(row.serial),
            escape(f"{format_text(row.model)} / {_soc_text(row)}"),
            # ", " between ABIs: a narrow column wraps there instead of folding a name.
            escape(f"{format_text(row.android)} (SDK {format_text(row.sdk)}) "
                   f"{format_text(row.abi).replace(',', ', ')}"),
            escape(format_text(row.gpu)),
            ("-" if row.battery_c is None else f"{row.battery_c:.1f} °C")
            + f" {escape(format_text(row.thermal))}",
            _app_text(row),
        )
    return table


def _soc_text(row: DeviceRow) -> str:
    """The SoC, with the board where it says something the SoC name does not."""
    if row.board and row.soc and row.board.lower() not in row.soc.lower():
        return f"{row.soc} ({row.board})"
    return format_text(row.soc or row.board)


def _app_text(row: DeviceRow) -> str:
    if row.app is None:
        return "[yellow]not installed[/]"
    return escape(row.app) + (" [yellow]outdated[/]" if row.app_outdated else "")


# --------------------------------------------------------------------------- bench runs


def runs_table(
    records: Sequence[dict[str, Any]], title: str = "Benchmark results", *, wide: bool = False
) -> RenderableType:
    """Runs from the runner (or the store). Compact: one table per device, the serial in
    its title, the columns a decision needs; wide: every figure in one table."""
    if wide:
        return _wide_runs_table(records, title)
    tables = [
        _compact_runs_table(group, f"{title} on {_device_label(group[0])}")
        for group in _by_serial(records).values()
    ]
    return tables[0] if len(tables) == 1 else Group(*tables)


def _compact_runs_table(records: Sequence[dict[str, Any]], title: str) -> Table:
    table = new_table(title, caption="--wide: every figure and the run ids")
    add_identifier_column(table, "model")
    add_text_column(table, "delegate → ran on")
    for header in ("p50\nms", "p90\nms", "init\nms", "peak\nRSS MB"):
        add_figure_column(table, header)
    add_text_column(table, "status")
    for record in records:
        result = record["result"]
        latency = result.get("latency") or {}
        stats = latency.get("stats") or {}
        table.add_row(
            escape(record["model_name"]),
            _ran_on(result["delegate"], result["status"]),
            format_ms(stats.get("p50")),
            format_ms(stats.get("p90")),
            format_ms(latency.get("init")),
            format_mb((result.get("memory") or {}).get("peak_rss")),
            format_status(result["status"], wrap=True),
        )
    return table


WIDE_COLUMNS = (
    "device", "model", "delegate", "status", "init ms", "first ms", "min ms", "p50 ms",
    "mean ms", "p90 ms", "p99 ms", "std ms", "peak RSS MB", "PSS MB", "thermal", "run id",
)
_IDENTIFIER_COLUMNS = ("device", "model", "run id")


def _wide_runs_table(records: Sequence[dict[str, Any]], title: str) -> Table:
    table = new_table(title, wide=True)
    for column in WIDE_COLUMNS:
        if column in _IDENTIFIER_COLUMNS:
            add_identifier_column(table, column)
        elif column.endswith(("ms", "MB")):
            add_figure_column(table, column)
        else:
            add_text_column(table, column)
    for record in records:
        result = record["result"]
        latency = result.get("latency") or {}
        stats = latency.get("stats") or {}
        memory = result.get("memory") or {}
        thermal = result["thermal"]
        table.add_row(
            escape(record["serial"]),
            escape(record["model_name"]),
            _delegate_detail(result["delegate"]),
            format_status(result["status"]),
            format_ms(latency.get("init")),
            format_ms(latency.get("first_inference")),
            *(format_ms(stats.get(key)) for key in ("min", "p50", "mean", "p90", "p99", "std")),
            format_mb(memory.get("peak_rss")),
            format_mb(memory.get("pss")),
            escape(f"{thermal.get('before')} → {thermal.get('after')}"),
            escape(result["run_id"]),
        )
    return table


def _by_serial(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["serial"], []).append(record)
    return groups


def _device_label(record: dict[str, Any]) -> str:
    model = (record["result"].get("device") or {}).get("model")
    return f"{record['serial']} ({model})" if model else record["serial"]




def _ran_on(delegate: dict[str, Any], status: str = "ok") -> str:
    """`cpu → xnnpack`; a request that did not take the graph ran on the CPU, and says so;
    a run that failed ran on nothing (`cpu → -`)."""
    if status != "ok" and not delegate.get("applied"):
        return escape(f"{delegate['requested']} → -")
    if delegate.get("applied"):
        return escape(f"{delegate['requested']} → {delegate.get('name') or '-'}")
    return f"{escape(delegate['requested'])} → cpu [yellow]not applied[/]"


def _delegate_detail(delegate: dict[str, Any]) -> str:
    """`gpu→xnnpack, not applied` / `cpu→xnnpack 12/12 nodes, 1 part.`: asked, then what ran."""
    text = escape(f"{delegate['requested']}→{delegate.get('name') or '-'}")
    if not delegate.get("applied"):
        text += ", [yellow]not applied[/]"
    elif delegate.get("nodes_total"):
        text += (
            f" {delegate.get('nodes_delegated')}/{delegate['nodes_total']} nodes, "
            f"{delegate.get('partitions')} part."
        )
    if delegate.get("fallback_ops"):
        text += escape(f", CPU fallback: {', '.join(delegate['fallback_ops'][:3])}")
    return text


# --------------------------------------------------------------------------- A/B summary


@dataclass(frozen=True)
class ModelComparison:
    """Candidate against baseline on one device: ratio of medians over all pooled samples."""

    serial: str
    baseline: str
    candidate: str
    baseline_median_us: float
    candidate_median_us: float
    ratio: float
    low: float
    high: float

    def verdict(self) -> str:
        if self.low > 1.0:
            return "slower"
        if self.high < 1.0:
            return "faster"
        return "no clear difference"

    def describe(self, with_serial: bool) -> str:
        where = f" on {self.serial}" if with_serial else ""
        return (
            f"{self.candidate} vs {self.baseline}{where}: median "
            f"{format_ms(self.candidate_median_us)} vs {format_ms(self.baseline_median_us)} ms, "
            f"ratio {self.ratio:.3f}× (95% CI {self.low:.3f}–{self.high:.3f}), {self.verdict()}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial, "baseline": self.baseline, "candidate": self.candidate,
            "statistic": "median", "baseline_us": self.baseline_median_us,
            "candidate_us": self.candidate_median_us, "ratio": self.ratio,
            "ci95": [self.low, self.high],
        }


def compare_models(records: Sequence[dict[str, Any]]) -> list[ModelComparison]:
    """Each model against the first one benched, per device, pooling the samples of every
    `--repeat` round (interleaved A B A B, so drift hits both alike)."""
    comparisons = []
    for serial, group in _by_serial(records).items():
        samples = _samples_by_model(group)
        if len(samples) < 2:
            continue
        baseline, *candidates = samples
        for candidate in candidates:
            ratio, low, high = ratio_confidence_interval(
                samples[baseline], samples[candidate], statistic="median"
            )
            comparisons.append(ModelComparison(
                serial, baseline, candidate, _median(samples[baseline]),
                _median(samples[candidate]), ratio, low, high,
            ))
    return comparisons


def comparison_lines(comparisons: Sequence[ModelComparison]) -> list[str]:
    with_serial = len({comparison.serial for comparison in comparisons}) > 1
    return [comparison.describe(with_serial) for comparison in comparisons]


def _samples_by_model(records: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    pooled: dict[str, list[float]] = {}
    for record in records:
        samples = (record["result"].get("latency") or {}).get("samples") or []
        if record["result"]["status"] == "ok" and samples:
            pooled.setdefault(record["model_name"], []).extend(samples)
    return pooled


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))

