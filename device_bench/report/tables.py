"""Rich tables for devices, benchmark runs and comparisons (presentation only).

Two rules hold for every table here. Identifiers (model names, serials, run ids) are never
cut: their columns fold instead of ending in "…", and the compact tables are laid out so
that at 80 columns the usual ones (a serial, `folder:tflite-int8`, a run id) need not fold.
Latencies are milliseconds with fixed decimals, never "1.14e+03".
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.table import Column, Table

from mobilize.results.stats import ratio_confidence_interval
from mobilize.results.store import StoredRun

UNCONSTRAINED_WIDTH = 10_000
FOLDED_WIDTH = 6  # what a folded identifier or a wrapped text column is assumed to need


class FittedTable(Table):
    """A table whose identifier and number columns stay whole whenever the width allows.

    Whole columns are `no_wrap`, so rich shrinks the wrapping text columns first. A no_wrap
    cell that still does not fit would be cropped, which is worse than folded: a cropped
    run id or latency reads as another one. So when the narrowest layout is wider than the
    console, identifiers wrap and fold (never "…"), and if even that is not enough, numbers
    fold too.
    """

    def __init__(self, *args: Any, natural_if_too_wide: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.identifier_columns: list[Column] = []
        self.figure_columns: list[Column] = []
        # --wide: a table that cannot fit is drawn at its own width (print it with
        # crop=False), since squeezing 16 columns into 100 leaves 4 characters each.
        self.natural_if_too_wide = natural_if_too_wide

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self._narrowest_widths(console, options)
        identifiers_whole = sum(widths["whole"]) <= options.max_width
        figures_whole = sum(widths["figures_whole"]) <= options.max_width
        if self.natural_if_too_wide and not identifiers_whole:
            options = options.update_width(sum(widths["natural"]))
            identifiers_whole = figures_whole = True
        for column in self.identifier_columns:
            column.no_wrap = identifiers_whole
        for column in self.figure_columns:
            column.no_wrap = figures_whole
        yield from super().__rich_console__(console, options)

    def _narrowest_widths(self, console: Console, options: ConsoleOptions) -> dict[str, list[int]]:
        """Per column, with padding: "whole" keeps identifiers and figures at their widest
        cell and lets text wrap to its longest word; "figures_whole" lets identifiers fold
        too (to a few characters). Measured unconstrained: rich's own measure already
        squeezes the table into the width."""
        unconstrained = options.update_width(UNCONSTRAINED_WIDTH)
        widths: dict[str, list[int]] = {"whole": [self._extra_width],
                                        "figures_whole": [self._extra_width],
                                        "natural": [self._extra_width]}
        for column in self.columns:
            # _measure_column: rich's per-column measure (with padding); not public API.
            measured = self._measure_column(console, unconstrained, column)
            is_figure = any(column is kept for kept in self.figure_columns)
            is_identifier = any(column is kept for kept in self.identifier_columns)
            whole = is_figure or is_identifier
            widths["whole"].append(measured.maximum if whole else measured.minimum)
            widths["figures_whole"].append(
                measured.maximum if is_figure else min(measured.minimum, FOLDED_WIDTH)
            )
            widths["natural"].append(measured.maximum)
        return widths


def new_table(title: str, caption: str | None = None, *, wide: bool = False) -> FittedTable:
    # A rule under the header, no borders, two spaces between columns: each column costs
    # two characters instead of the default box's three, which is what lets the compact
    # tables fit 80 columns.
    return FittedTable(title=escape(title), caption=caption, box=box.SIMPLE_HEAD,
                       show_edge=False, pad_edge=False, collapse_padding=True,
                       title_justify="left", caption_justify="left",
                       natural_if_too_wide=wide)


def add_identifier_column(table: FittedTable, header: str) -> None:
    # A name, serial or run id is only useful whole.
    table.add_column(header, no_wrap=True, overflow="fold")
    table.identifier_columns.append(table.columns[-1])


def add_figure_column(table: FittedTable, header: str) -> None:
    # The header is given on two lines ("p50\nms") so it is no wider than the numbers.
    table.add_column(header, justify="right", no_wrap=True, overflow="fold")
    table.figure_columns.append(table.columns[-1])


def add_text_column(table: FittedTable, header: str) -> None:
    table.add_column(header, overflow="fold")


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
            escape(f"{_text(row.model)} / {_soc_text(row)}"),
            # ", " between ABIs: a narrow column wraps there instead of folding a name.
            escape(f"{_text(row.android)} (SDK {_text(row.sdk)}) "
                   f"{_text(row.abi).replace(',', ', ')}"),
            escape(_text(row.gpu)),
            ("-" if row.battery_c is None else f"{row.battery_c:.1f} °C")
            + f" {escape(_text(row.thermal))}",
            _app_text(row),
        )
    return table


def _soc_text(row: DeviceRow) -> str:
    """The SoC, with the board where it says something the SoC name does not."""
    if row.board and row.soc and row.board.lower() not in row.soc.lower():
        return f"{row.soc} ({row.board})"
    return _text(row.soc or row.board)


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
            _mb((result.get("memory") or {}).get("peak_rss")),
            _status(result["status"], wrap=True),
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
            _status(result["status"]),
            format_ms(latency.get("init")),
            format_ms(latency.get("first_inference")),
            *(format_ms(stats.get(key)) for key in ("min", "p50", "mean", "p90", "p99", "std")),
            _mb(memory.get("peak_rss")),
            _mb(memory.get("pss")),
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


def _status(status: str, wrap: bool = False) -> str:
    """`ok` in green, a failure in red; `wrap` writes model_load_failed as words so a
    narrow column wraps it instead of folding it."""
    if status == "ok":
        return "[green]ok[/]"
    return f"[red]{escape(status.replace('_', ' ') if wrap else status)}[/]"


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
            format_ms(run.p50_us), _status(run.status),
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
            escape(run.model_name), escape(_text(run.target)), escape(run.runner),
            str(run.threads), _stored_delegate(run), _status(run.status),
            format_ms(run.p50_us), format_ms(run.mean_us), format_ms(run.init_us),
            _mb(run.pss_kb), _mb(memory.get("peak_rss")), escape(run.run_id),
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


# --------------------------------------------------------------------------- numbers


def format_ms(value_us: float | None) -> str:
    """Microseconds as milliseconds in fixed point: two decimals, three under 1 ms so a
    0.142 ms run does not read as 0.14; never an exponent."""
    if value_us is None:
        return "-"
    value_ms = value_us / 1000.0
    return f"{value_ms:.3f}" if abs(value_ms) < 1.0 else f"{value_ms:.2f}"


def _mb(value_kb: float | None) -> str:
    return "-" if value_kb is None else f"{value_kb / 1024.0:.1f}"


def _text(value: object) -> str:
    return "-" if value is None else str(value)
