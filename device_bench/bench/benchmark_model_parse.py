"""Pure parsers of Google's `benchmark_model` output (benchmark_model.py maps it to the schema).

Text in, plain values out: timings and the latency object, delegate figures, the GPU
delegate's list of the ops it cannot run (GpuDelegateReport), and the tables of
--enable_op_profiling=true (OpProfile). The memory lines and failure markers are read in
benchmark_model.py.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from mobilize.device.logcat import parse_logcat_line

# Delegate names the tool's "Replacing ... with delegate (NAME) node" line carries.
DELEGATE_KERNEL_NAMES = {
    "gpu": ("TfLiteGpuDelegateV2", "TfLiteGpuDelegate", "TfLiteMetalDelegate"),
    "nnapi": ("TfLiteNnapiDelegate",),
    "cpu": ("TfLiteXNNPackDelegate",),
}
# The provider names of "Explicitly applied GPU delegate, ..." lines.
PROVIDER_NAMES = {"gpu": "GPU", "nnapi": "NNAPI", "cpu": "XNNPACK"}

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
TIMINGS = re.compile(
    rf"Inference timings in us: Init: (?P<init>{NUMBER}), First inference: "
    rf"(?P<first>{NUMBER}), Warmup \(avg\): (?P<warmup>{NUMBER}), Inference \(avg\): "
    rf"(?P<avg>{NUMBER})"
)
_STAT_LINE = re.compile(rf"\bcount=(?P<count>\d+)(?P<rest>(?: \w+={NUMBER})*)")
_STAT_FIELD = re.compile(rf"(\w+)=({NUMBER})")
_REPLACING = re.compile(
    r"Replacing (?P<n>\d+) out of (?P<m>\d+) node\(s\) with delegate \((?P<name>[^)]+)\) node, "
    r"yielding (?P<k>\d+) partitions"
)
_APPLIED = re.compile(
    r"Explicitly applied (?P<name>\w+) delegate, and the model graph will be "
    r"(?:completely executed|partially executed by the delegate w/ (?P<kernels>\d+))"
)
_NOT_EXECUTED = re.compile(
    r"Though (?P<name>\w+) delegate is explicitly applied, the model graph will not be"
)
ERROR_PREFIX = re.compile(r"^(?:ERROR|E\b|FATAL|F\b)[:/ ]\s*")

# How Android's /system/bin/sh (mksh) and its linker say that a program could not start,
# after "NAME: " (mksh: "/system/bin/sh: NAME: ..."): wrong ELF class or machine ("not
# executable: 64-bit ELF file"; exit 1 up to mksh R59c, 126 later), no execute permission
# or a noexec mount ("can't execute: Permission denied", 126), no such file
# ("inaccessible or not found", 127), and an ELF interpreter the device lacks (a glibc or
# other-ABI build: "No such file or directory", 126). Source: exec.c of
# https://github.com/MirBSD/mksh (tag mksh-R59c, and its 2024 change 756ab469).
_EXEC_REFUSALS = (
    r"not executable: .*",
    r"can't execute: .*",
    r"cannot execute.*",
    r"inaccessible or not found",
    r"not found",
    r"No such file or directory",
    r"Exec format error",
    r"Permission denied",
)
EXIT_CANNOT_EXECUTE = 126  # POSIX: found but could not be executed
EXIT_NOT_FOUND = 127  # POSIX: no such command
# The tool's first line: it printed it, so it ran.
STARTED = "STARTING!"


def exec_failure(text: str, binary: str, exit_code: int | None = None) -> str | None:
    """The device's line saying `binary` itself could not be executed, else None.

    Read from the shell's message naming the binary (the path as run or its file name) or
    the linker's "CANNOT LINK EXECUTABLE", wherever the exit code got lost; an exit code of
    126 or 127 with nothing from the tool stands for such a line too (the last one printed,
    or a note of the code where it printed nothing).
    """
    name = re.escape(binary.rpartition("/")[2])
    shell = re.compile(rf"(?:^|[\s:])(?:\S*/)?{name}: (?:{'|'.join(_EXEC_REFUSALS)})\s*$")
    linker = re.compile(rf"CANNOT LINK EXECUTABLE \"(?:\S*/)?{name}\"")
    for line in text.splitlines():
        stripped = line.strip()
        if shell.search(stripped) or linker.search(stripped):
            return stripped
    if exit_code in (EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND) and STARTED not in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else f"(no output; exit code {exit_code})"
    return None


def stat_lines(text: str) -> list[dict[str, float]]:
    """The `count=N first=.. curr=.. min=.. max=.. avg=.. std=..` lines, in order."""
    stats = []
    for line in text.splitlines():
        if "Timings (microseconds)" in line or "Memory (bytes)" in line:
            continue  # op-profiling summaries reuse the same format
        match = _STAT_LINE.search(line)
        if not match:
            continue
        fields = {"count": float(match["count"])}
        fields.update({k: float(v) for k, v in _STAT_FIELD.findall(match["rest"])})
        stats.append(fields)
    return stats


def _stats_from_tool(fields: dict[str, float]) -> dict[str, Any] | None:
    count = int(fields["count"])
    if count == 0:
        return None
    if "avg" in fields:
        low, high, mean, std = fields["min"], fields["max"], fields["avg"], fields["std"]
    else:  # "count=N curr=X": every sample was X
        low = high = mean = fields["curr"]
        std = 0.0
    stats: dict[str, Any] = {
        "count": count,
        "min": low,
        "max": high,
        "mean": mean,
        "std": std,
        "p50": None,
        "p90": None,
        "p99": None,
    }
    printed = {k: fields[k] for k in ("p5", "median", "p95") if k in fields}
    if printed:
        stats["tool_percentiles"] = printed
    return stats


def latency(text: str) -> dict[str, Any] | None:
    """The schema's latency object: aggregates only (the tool prints no samples)."""
    timings = TIMINGS.search(text)
    lines = stat_lines(text)
    if timings is None and not lines:
        return None
    # The tool prints the warm-up line first, then the timed runs' line. Where only one
    # was kept (a trimmed log), it is the timed runs' when its avg is "Inference (avg)".
    warm = lines[0] if lines else None
    timed = lines[1] if len(lines) >= 2 else None
    if len(lines) == 1 and timings is not None:
        mean = warm.get("avg", warm.get("curr")) if warm else None
        if mean is not None and mean == float(timings["avg"]) != float(timings["warmup"]):
            warm, timed = None, lines[0]
    first = float(timings["first"]) if timings else None
    if first is None and warm is not None:
        first = warm.get("first", warm.get("curr"))
    return {
        "unit": "us",
        "init": float(timings["init"]) if timings else None,
        "first_inference": first,
        "warmup": [],  # the tool prints only the warm-ups' aggregate (Warmup (avg))
        "samples": [],  # and only an aggregate of the timed runs: see stats
        "stats": _stats_from_tool(timed) if timed else None,
    }


def delegate(text: str, requested: str) -> dict[str, Any]:
    """The schema's delegate object for the delegate that was asked for."""
    kernel_names = DELEGATE_KERNEL_NAMES[requested]
    replaced = [m for m in _REPLACING.finditer(text) if m["name"] in kernel_names]
    info: dict[str, Any] = {
        "requested": requested,
        "applied": False,
        "name": None,
        "nodes_delegated": None,
        "nodes_total": None,
        "partitions": None,
        # Only the GPU delegate names the ops it leaves on the CPU.
        "fallback_ops": unsupported_ops(text) if requested == "gpu" else [],
        "message": None,
    }
    provider = PROVIDER_NAMES[requested]
    applied = [m for m in _APPLIED.finditer(text) if m["name"] == provider]
    refused = [m for m in _NOT_EXECUTED.finditer(text) if m["name"] == provider]
    if replaced:
        info.update(
            nodes_delegated=sum(int(m["n"]) for m in replaced),
            nodes_total=sum(int(m["m"]) for m in replaced),
            partitions=sum(int(m["k"]) for m in replaced),
        )
    elif applied:
        kernels = applied[0]["kernels"]
        info["partitions"] = int(kernels) if kernels else 1
    took_nodes = bool(replaced and info["nodes_delegated"]) or bool(applied)
    if requested == "cpu":
        info.update(applied=True, name="xnnpack" if took_nodes else "builtin")
        return info
    info["applied"] = took_nodes and not refused
    info["name"] = requested if info["applied"] else "builtin"
    if not info["applied"]:
        reason = line_with(text, ("unsupported on this platform", "Though ", "isn't supported"))
        info["message"] = f"the {provider} delegate took no nodes; the model ran on the CPU" + (
            f" ({reason})" if reason else ""
        )
    return info


@dataclass(frozen=True)
class UnsupportedOp:
    op: str  # "CONV_2D", "CUSTOM TFLite_Detection_PostProcess", "DELEGATE TfLiteXNNPackDelegate"
    reason: str  # "" where the delegate logged none ("DEQUANTIZE: ")


@dataclass(frozen=True)
class GpuDelegateReport:
    """The GPU delegate's "Following (older: Next) operations are not supported" message."""

    unsupported: tuple[UnsupportedOp, ...]
    gpu_ops: int | None  # "N operations will run on the GPU" ("No operations": 0)
    cpu_ops: int | None  # "... and the remaining M (operations will run) on the CPU"


# "ERROR: " / "<Unknown severity>: " / a logcat prefix may come before it.
_UNSUPPORTED_HEADER = re.compile(r"\b(?:Following|Next) operations are not supported by")
_UNSUPPORTED_OP = re.compile(r"^(?P<op>[A-Z][A-Z0-9_]*(?: [\w.]+)?):(?:\s(?P<reason>.*)|$)")
_SEVERITIES = frozenset({"INFO", "WARNING", "ERROR", "VERBOSE", "DEBUG", "FATAL"})
_GPU_SUMMARY = re.compile(
    r"(?:First )?(?P<gpu>\d+|No) operations will run on the GPU, and (?:the remaining|all) "
    r"(?P<cpu>\d+) (?:operations will run )?on the CPU"
)


def gpu_delegate_report(text: str) -> GpuDelegateReport | None:
    """The ops (with reasons) the GPU delegate left to the CPU, and its GPU/CPU counts.

    Read from the tool's output or from logcat (each line with its own prefix, or Android
    Studio's unprefixed continuation lines); an op may have a blank reason. None when the
    delegate printed no such list.
    """
    ops: list[UnsupportedOp] = []
    found = listing = False
    summary = None
    for raw in text.splitlines():
        entry = parse_logcat_line(raw)
        if listing and entry.tag not in (None, "tflite"):
            continue  # another thread's line inside the list
        line = entry.message.strip()
        if _UNSUPPORTED_HEADER.search(line):
            found = listing = True
            continue
        op = _UNSUPPORTED_OP.match(line) if listing else None
        if op is None or op["op"] in _SEVERITIES:
            listing = False
            if found and summary is None:
                summary = _GPU_SUMMARY.search(line)
            continue
        ops.append(UnsupportedOp(op["op"], (op["reason"] or "").strip()))
    if not found:
        return None
    gpu = None if summary is None else 0 if summary["gpu"] == "No" else int(summary["gpu"])
    return GpuDelegateReport(tuple(ops), gpu, int(summary["cpu"]) if summary else None)


def unsupported_ops(text: str) -> list[str]:
    """Op names listed under the GPU delegate's "Following operations are not supported"."""
    report = gpu_delegate_report(text)
    return sorted({op.op for op in report.unsupported}) if report else []


def line_with(text: str, needles: tuple[str, ...]) -> str | None:
    for line in text.splitlines():
        if any(needle in line for needle in needles):
            return ERROR_PREFIX.sub("", line.strip())
    return None


def runtime_version(text: str) -> str | None:
    """benchmark_model names no version in its output; the flag dump sometimes does."""
    match = re.search(r"TensorFlow Lite version:? \[?([\w.\-]+)", text)
    return match[1] if match else None


# --- --enable_op_profiling=true ------------------------------------------------------------


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
    fields: dict[str, float] = {key: float(value) for key, value in _STAT_FIELD.findall(line)}
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
