"""The per-op tables benchmark_model prints with --enable_op_profiling=true (`--profile-ops`).

Pure: text in, records out. parse_op_profile reads each "Profiling Info for ..." block
(initialization, then the regular timed runs) with its "Run Order", "Top by Computation
Time", "Top by Memory Use" and "Summary by node type" tables into an OpProfile;
OpProfile.as_dict is the result's top-level `op_profile` object (benchmark_model.py). Kept
apart from benchmark_model_parse.py because these tables are a format of their own, read
only when profiling was asked for.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from mobilize.bench.benchmark_model_parse import STAT_FIELD


@dataclass(frozen=True)
class OpProfileRow:
    """A row of "Run Order", "Top by Computation Time" or "Top by Memory Use"."""

    node_type: str
    start_ms: float | None  # the [start] column; None in builds that do not print it
    first_ms: float
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int
    name: str  # "[MobilenetV1/.../Relu6]:0", "AllocateTensors/0"


@dataclass(frozen=True)
class NodeTypeSummary:
    """A row of "Summary by node type"."""

    node_type: str
    count: int
    avg_ms: float
    avg_percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int


@dataclass(frozen=True)
class OpProfileSection:
    """One "Profiling Info for ..." block: initialization, or the regular (timed) runs."""

    title: str
    run_order: tuple[OpProfileRow, ...]
    top_by_computation_time: tuple[OpProfileRow, ...]
    top_by_memory_use: tuple[OpProfileRow, ...]
    summary_by_node_type: tuple[NodeTypeSummary, ...]
    nodes_executed: int | None  # "Number of nodes executed: N"
    timings_us: dict[str, float] | None  # "Timings (microseconds): count=.. first=.. avg=.."
    memory_bytes: dict[str, float] | None  # "Memory (bytes): count=0"
    nodes_observed: int | None  # "N nodes observed"


@dataclass(frozen=True)
class OpProfile:
    sections: tuple[OpProfileSection, ...]

    def section(self, word: str) -> OpProfileSection | None:
        return next((s for s in self.sections if word in s.title), None)

    @property
    def initialization(self) -> OpProfileSection | None:
        return self.section("Initialization")

    @property
    def regular_runs(self) -> OpProfileSection | None:
        return self.section("Regular Benchmark Runs")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: {"initialization": {...} | None, "regular_runs": {...} | None}."""
        return {
            "initialization": _plain(self.initialization),
            "regular_runs": _plain(self.regular_runs),
        }


def _plain(section: OpProfileSection | None) -> dict[str, Any] | None:
    """A section as JSON values: its tables as lists of row objects."""
    if section is None:
        return None
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in asdict(section).items()
    }


_SECTION_TITLE = re.compile(r"^(?P<title>.*Profiling Info for .*?):\s*$")
_TABLE_TITLE = re.compile(r"^=+ (?P<title>.+?) =+$")
# Column titles (compared in lower case) -> record fields; other columns are skipped.
_ROW_FIELDS = {
    "[node type]": "node_type", "[start]": "start_ms", "[first]": "first_ms",
    "[avg ms]": "avg_ms", "[%]": "percent", "[cdf%]": "cdf_percent", "[mem kb]": "mem_kb",
    "[times called]": "times_called", "[name]": "name", "[count]": "count",
    "[avg %]": "avg_percent", "[cdf %]": "cdf_percent",
}  # fmt: skip
_TABLES = {
    "Run Order": "run_order",
    "Top by Computation Time": "top_by_computation_time",
    "Top by Memory Use": "top_by_memory_use",
    "Summary by node type": "summary_by_node_type",
}


def _cells(line: str, width: int) -> list[str]:
    """A table line's cells: TAB-separated, or (where a copy lost its TABs) whitespace."""
    if "\t" in line:
        cells = [cell.strip() for cell in line.strip("\n").split("\t")]
        cells = cells[1:] if cells and not cells[0] else cells
        return [*cells[: width - 1], "\t".join(cells[width - 1 :])] if len(cells) > width else cells
    return line.split(None, width - 1)


def _profile_row(columns: list[str], line: str) -> dict[str, Any] | None:
    cells = _cells(line, len(columns))
    if len(cells) != len(columns):
        return None
    row: dict[str, Any] = {}
    for field, cell in zip(columns, cells, strict=True):
        if field not in _ROW_FIELDS.values():
            continue
        try:
            if field in ("node_type", "name"):
                row[field] = cell
            elif field in ("count", "times_called"):
                row[field] = int(cell)
            else:
                row[field] = float(cell.rstrip("%"))
        except ValueError:
            return None  # not a row of the table: it ends here
    return row


def parse_op_profile(text: str) -> OpProfile | None:
    """The tables benchmark_model prints with --enable_op_profiling=true; None without them."""
    sections: list[dict[str, Any]] = []
    table: str | None = None
    columns: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if (title := _SECTION_TITLE.match(stripped)) is not None:
            sections.append({"title": title["title"], **{name: [] for name in _TABLES.values()}})
            table = columns = None
        elif not sections:
            continue
        elif (table_title := _TABLE_TITLE.match(stripped)) is not None:
            table, columns = _TABLES.get(table_title["title"]), None
        elif table is not None and columns is None and stripped.startswith("["):
            titles = re.findall(r"\[[^\]]+\]", stripped)
            columns = [_ROW_FIELDS.get(title.lower(), title) for title in titles]
        elif table is not None and columns is not None and stripped:
            row = _profile_row(columns, line)
            if row is None:
                table = None
            else:
                sections[-1][table].append(row)
        elif stripped.startswith(("Number of nodes executed:", "Timings (microseconds):",
                                  "Memory (bytes):")) or stripped.endswith(" nodes observed"):
            table = None
            key, value = _profile_figure(stripped)
            sections[-1][key] = value
        else:
            table = None
    if not sections:
        return None
    return OpProfile(tuple(_section(fields) for fields in sections))


def _profile_figure(line: str) -> tuple[str, Any]:
    if line.startswith("Number of nodes executed:"):
        return "nodes_executed", int(line.rpartition(":")[2])
    if line.endswith(" nodes observed"):
        return "nodes_observed", int(line.split()[0])
    fields: dict[str, float] = {key: float(value) for key, value in STAT_FIELD.findall(line)}
    if "count" in fields:
        fields["count"] = int(fields["count"])
    return ("timings_us" if line.startswith("Timings") else "memory_bytes"), fields


def _built(kind: type, rows: list[dict[str, Any]], **defaults: Any) -> tuple[Any, ...]:
    """The rows as records; a table whose columns lack one the record needs gives none."""
    try:
        return tuple(kind(**{**defaults, **row}) for row in rows)
    except TypeError:
        return ()


def _section(fields: dict[str, Any]) -> OpProfileSection:
    def rows(key: str) -> tuple[OpProfileRow, ...]:
        return _built(OpProfileRow, fields[key], start_ms=None)

    return OpProfileSection(
        title=fields["title"],
        run_order=rows("run_order"),
        top_by_computation_time=rows("top_by_computation_time"),
        top_by_memory_use=rows("top_by_memory_use"),
        summary_by_node_type=_built(NodeTypeSummary, fields["summary_by_node_type"]),
        nodes_executed=fields.get("nodes_executed"),
        timings_us=fields.get("timings_us"),
        memory_bytes=fields.get("memory_bytes"),
        nodes_observed=fields.get("nodes_observed"),
    )
