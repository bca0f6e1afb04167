"""How every rich table of the harness is laid out and how its cells read (presentation only).

Two rules hold for every table built with these helpers. Identifiers (model names, serials,
run ids) are never cut: their columns fold instead of ending in "…", and the compact tables
are laid out so that at 80 columns the usual ones (a serial, `folder:tflite-int8`, a run id)
need not fold. Latencies are milliseconds with fixed decimals, never "1.14e+03".

The tables themselves live with what they show: tables.py (devices, the runs just benched,
the A/B summary), results_tables.py (stored runs, `mobilize results compare`) and the
sweep's in bench/sweep_cli.py; the rules live here so that they all keep them alike.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Column, Table

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


# --------------------------------------------------------------------------- cells


def format_ms(value_us: float | None) -> str:
    """Microseconds as milliseconds in fixed point: two decimals, three under 1 ms so a
    0.142 ms run does not read as 0.14; never an exponent."""
    if value_us is None:
        return "-"
    value_ms = value_us / 1000.0
    return f"{value_ms:.3f}" if abs(value_ms) < 1.0 else f"{value_ms:.2f}"


def format_mb(value_kb: float | None) -> str:
    """Kilobytes (as meminfo reports them) as megabytes with one decimal."""
    return "-" if value_kb is None else f"{value_kb / 1024.0:.1f}"


def format_text(value: object) -> str:
    """A value the device did not report reads as "-", not "None"."""
    return "-" if value is None else str(value)


def format_status(status: str, wrap: bool = False) -> str:
    """`ok` in green, a failure in red; `wrap` writes model_load_failed as words so a
    narrow column wraps it instead of folding it."""
    if status == "ok":
        return "[green]ok[/]"
    return f"[red]{escape(status.replace('_', ' ') if wrap else status)}[/]"
