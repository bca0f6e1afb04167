"""Pure parsers of Google's `benchmark_model` output (benchmark_model.py maps it to the schema).

Text in, plain values out: timings and the latency object, the memory object, delegate
figures, the GPU delegate's list of the ops it cannot run (GpuDelegateReport), and the
failure markers that decide a failed run's status (classify_failure). The tables of
--enable_op_profiling=true are read in benchmark_model_profile.py; a binary the device could
not start at all, in benchmark_model_exec.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
STAT_FIELD = re.compile(rf"(\w+)=({NUMBER})")
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
_FOOTPRINT = re.compile(
    rf"Memory footprint delta from the start of the tool \(MB\): init=(?P<init>{NUMBER}) "
    rf"overall=(?P<overall>{NUMBER})"
)
_PEAK_MONITORED = re.compile(
    rf"Overall peak memory footprint \(MB\) via periodic monitoring: (?P<peak>{NUMBER})"
)
_PEAK_OLD = re.compile(
    rf"Peak memory footprint \(MB\): init=(?P<init>{NUMBER}) overall=(?P<overall>{NUMBER})"
)

# (status, markers) in the order they are checked: the first marker found decides.
FAILURE_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "invalid_arguments",
        ("Please specify the name of your TF Lite input file", "Unknown flag"),
    ),
    ("model_not_found", ("Could not open '", "No such file or directory")),
    (
        "delegate_failed",
        ("Failed to apply", "Disallowed CPU fallback detected", "Failed to create"),
    ),
    (
        "out_of_memory",
        ("std::bad_alloc", "Out of memory", "out of memory", "Failed to allocate memory"),
    ),
    (
        "model_load_failed",
        (
            "Failed to mmap model",
            "not a valid Flatbuffer",
            "should be 'TFL3'",
            "Didn't find op for builtin opcode",
            "Failed to construct interpreter",
            "Failed to allocate tensors",
        ),
    ),
    ("inference_failed", ("failed to invoke", "Failed to invoke", "Benchmarking failed")),
)


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
        fields.update({k: float(v) for k, v in STAT_FIELD.findall(match["rest"])})
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


def _mb_to_kb(value: str) -> float:
    return float(value) * 1024.0


def memory(text: str) -> dict[str, Any] | None:
    footprint = _FOOTPRINT.search(text)
    monitored = _PEAK_MONITORED.search(text)
    old_peak = _PEAK_OLD.search(text)
    if not (footprint or monitored or old_peak):
        return None
    peak = None
    if monitored:
        peak = _mb_to_kb(monitored["peak"])
    elif old_peak:
        peak = _mb_to_kb(old_peak["overall"])
    return {
        "unit": "kB",
        "peak_rss": peak,
        "rss": None,
        "pss": None,
        "native_heap": None,
        "init_delta": _mb_to_kb(footprint["init"]) if footprint else None,
        "overall_delta": _mb_to_kb(footprint["overall"]) if footprint else None,
    }


def _error_lines(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if ERROR_PREFIX.match(stripped) or "failed to invoke" in stripped:
            lines.append(ERROR_PREFIX.sub("", stripped))
    return lines


def classify_failure(text: str, exit_code: int | None = None) -> tuple[str, str] | None:
    """(status, message) when the output shows a failed run, else None.

    A clean exit with the timings line is a success even when the tool logged an ERROR line
    on the way (some delegates log one and fall back); otherwise the first marker decides.
    """
    if exit_code == 0 and TIMINGS.search(text):
        return None
    for status, markers in FAILURE_MARKERS:
        line = line_with(text, markers)
        if line is not None:
            errors = _error_lines(text)
            unsupported = unsupported_ops(text)
            listed = [f"unsupported: {', '.join(unsupported)}"] if unsupported else []
            message = "; ".join(dict.fromkeys([line, *errors, *listed]))
            return status, f"benchmark_model: {message}"
    if exit_code not in (None, 0) or TIMINGS.search(text) is None:
        tail = "; ".join(_error_lines(text)) or " / ".join(text.strip().splitlines()[-3:])
        tail = tail or "no output"
        if TIMINGS.search(text):  # it finished its runs, then reported a failure
            return "inference_failed", f"benchmark_model exited with code {exit_code}: {tail}"
        code = f" (exit code {exit_code})" if exit_code not in (None, 0) else ""
        return "inference_failed", f"benchmark_model printed no timings{code}: {tail}"
    return None
