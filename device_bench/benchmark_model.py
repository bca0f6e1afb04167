"""A second runner: Google's prebuilt `benchmark_model` binary, parsed into our result schema.

benchmark_model (tensorflow/lite/tools/benchmark) prints aggregate figures only, never raw
samples. What it prints and how it maps onto bench_result.schema.json:

- `Inference timings in us: Init: I, First inference: F, Warmup (avg): W, Inference (avg): A`
  -> latency.init, latency.first_inference (the first warm-up run, as the tool defines it).
- The two `count=N first=.. curr=.. min=.. max=.. avg=.. std=..` lines (warm-up, then timed
  runs; a run whose samples were all equal prints `count=N curr=X`) -> latency.stats count,
  min, max, mean, std. The tool's std is the population standard deviation (as ours) but
  printed truncated to an integer. p50/p90/p99 stay null: the tool does not print them and
  we do not invent them. Newer builds add `p5=.. median=.. p95=..`; those are kept as printed
  under stats.tool_percentiles. latency.samples and latency.warmup stay empty.
- `Memory footprint delta from the start of the tool (MB): init=.. overall=..` ->
  memory.init_delta / overall_delta (kB); `Overall peak memory footprint (MB) via periodic
  monitoring: P` (with --report_peak_memory_footprint) and the older
  `Peak memory footprint (MB): init=.. overall=..` -> memory.peak_rss (kB).
- `Replacing N out of M node(s) with delegate (NAME) node, yielding K partitions ...`
  -> delegate nodes_delegated / nodes_total / partitions, summed over subgraphs, for the
  delegate that was asked for (XNNPACK for cpu).
- Its ERROR lines (missing file, bad flatbuffer, `Failed to apply GPU delegate.`,
  `Failed to allocate tensors!`, `Node number N (OP) failed to invoke.`) -> a failure status
  with the tool's own words as the message.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from device_bench import app_contract, ops
from device_bench.device import Device
from device_bench.errors import AdbError

REMOTE_BINARY = "/data/local/tmp/mobilize_benchmark_model"
PUSH_TIMEOUT_S = 120.0
RUNTIME_NAME = "tflite-benchmark_model"

# Delegate names the tool's "Replacing ... with delegate (NAME) node" line carries.
DELEGATE_KERNEL_NAMES = {
    "gpu": ("TfLiteGpuDelegateV2", "TfLiteGpuDelegate", "TfLiteMetalDelegate"),
    "nnapi": ("TfLiteNnapiDelegate",),
    "cpu": ("TfLiteXNNPackDelegate",),
}
# The provider names of "Explicitly applied GPU delegate, ..." lines.
PROVIDER_NAMES = {"gpu": "GPU", "nnapi": "NNAPI", "cpu": "XNNPACK"}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TIMINGS = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_NUMBER}), First inference: "
    rf"(?P<first>{_NUMBER}), Warmup \(avg\): (?P<warmup>{_NUMBER}), Inference \(avg\): "
    rf"(?P<avg>{_NUMBER})"
)
_STAT_LINE = re.compile(rf"\bcount=(?P<count>\d+)(?P<rest>(?: \w+={_NUMBER})*)")
_STAT_FIELD = re.compile(rf"(\w+)=({_NUMBER})")
_FOOTPRINT = re.compile(
    rf"Memory footprint delta from the start of the tool \(MB\): init=(?P<init>{_NUMBER}) "
    rf"overall=(?P<overall>{_NUMBER})"
)
_PEAK_MONITORED = re.compile(
    rf"Overall peak memory footprint \(MB\) via periodic monitoring: (?P<peak>{_NUMBER})"
)
_PEAK_OLD = re.compile(
    rf"Peak memory footprint \(MB\): init=(?P<init>{_NUMBER}) overall=(?P<overall>{_NUMBER})"
)
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
_ERROR_PREFIX = re.compile(r"^(?:ERROR|E\b|FATAL|F\b)[:/ ]\s*")

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


CONFIG_KEYS = ("delegate", "threads", "warmup_runs", "num_runs", "gpu_precision")


def _config_dict(config: Any) -> dict[str, Any]:
    """The schema's config object from a BenchConfig (or a mapping with the same keys)."""
    if isinstance(config, Mapping):
        return {key: config[key] for key in CONFIG_KEYS}
    return dict(config.as_schema_dict())


def _flag(name: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return shlex.quote(f"--{name}={value}")


def build_command(
    binary_remote: str,
    model_remote: str,
    config: Any,
    *,
    enable_op_profiling: bool = False,
    max_secs: float | None = None,
) -> str:
    """The device shell line that runs benchmark_model with the run's settings.

    --min_secs=0 and --warmup_min_secs=0 make the tool run exactly the asked number of
    warm-ups and runs (by default it keeps going for 0.5 s and 1 s); stderr is merged
    because the tool logs everything there.
    """
    settings = _config_dict(config)
    delegate = settings["delegate"]
    flags = [
        _flag("graph", model_remote),
        _flag("num_threads", int(settings["threads"])),
        _flag("warmup_runs", int(settings["warmup_runs"])),
        _flag("warmup_min_secs", 0),
        _flag("num_runs", int(settings["num_runs"])),
        _flag("min_secs", 0),
        _flag("use_gpu", delegate == "gpu"),
        _flag("use_nnapi", delegate == "nnapi"),
        # XNNPACK only for cpu runs: with an accelerator the fallback ops run on the
        # builtin kernels, so the Replacing line we read is the accelerator's own.
        _flag("use_xnnpack", delegate == "cpu"),
        _flag("gpu_precision_loss_allowed", settings["gpu_precision"] == "fp16"),
        _flag("report_peak_memory_footprint", True),
    ]
    if max_secs is not None:
        flags.append(_flag("max_secs", max(1, int(max_secs))))
    if enable_op_profiling:
        flags.append(_flag("enable_op_profiling", True))
    return " ".join([shlex.quote(binary_remote), *flags, "2>&1"])


def _stat_lines(text: str) -> list[dict[str, float]]:
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


def _mb_to_kb(value: str) -> float:
    return float(value) * 1024.0


def _memory(text: str) -> dict[str, Any] | None:
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


def _delegate(text: str, requested: str) -> dict[str, Any]:
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
        reason = _line_with(text, ("unsupported on this platform", "Though ", "isn't supported"))
        info["message"] = f"the {provider} delegate took no nodes; the model ran on the CPU" + (
            f" ({reason})" if reason else ""
        )
    return info


_UNSUPPORTED_HEADER = "Following operations are not supported by"
_UNSUPPORTED_OP = re.compile(r"^(?P<op>[A-Z][A-Z0-9_]*(?: [\w.]+)?): ")


def unsupported_ops(text: str) -> list[str]:
    """Op names listed under the GPU delegate's "Following operations are not supported"."""
    ops_found: list[str] = []
    listing = False
    for line in text.splitlines():
        if _UNSUPPORTED_HEADER in line:
            listing = True
            continue
        match = _UNSUPPORTED_OP.match(line.strip()) if listing else None
        if match is None:
            listing = False
            continue
        ops_found.append(match["op"])
    return sorted(set(ops_found))


def _line_with(text: str, needles: tuple[str, ...]) -> str | None:
    for line in text.splitlines():
        if any(needle in line for needle in needles):
            return _ERROR_PREFIX.sub("", line.strip())
    return None


def _error_lines(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if _ERROR_PREFIX.match(stripped) or "failed to invoke" in stripped:
            lines.append(_ERROR_PREFIX.sub("", stripped))
    return lines


def classify_failure(text: str, exit_code: int | None = None) -> tuple[str, str] | None:
    """(status, message) when the output shows a failed run, else None.

    A clean exit with the timings line is a success even when the tool logged an ERROR line
    on the way (some delegates log one and fall back); otherwise the first marker decides.
    """
    if exit_code == 0 and _TIMINGS.search(text):
        return None
    for status, markers in FAILURE_MARKERS:
        line = _line_with(text, markers)
        if line is not None:
            errors = _error_lines(text)
            unsupported = unsupported_ops(text)
            listed = [f"unsupported: {', '.join(unsupported)}"] if unsupported else []
            message = "; ".join(dict.fromkeys([line, *errors, *listed]))
            return status, f"benchmark_model: {message}"
    if exit_code not in (None, 0) or _TIMINGS.search(text) is None:
        tail = "; ".join(_error_lines(text)) or " / ".join(text.strip().splitlines()[-3:])
        tail = tail or "no output"
        if _TIMINGS.search(text):  # it finished its runs, then reported a failure
            return "inference_failed", f"benchmark_model exited with code {exit_code}: {tail}"
        code = f" (exit code {exit_code})" if exit_code not in (None, 0) else ""
        return "inference_failed", f"benchmark_model printed no timings{code}: {tail}"
    return None


def parse_output(
    text: str,
    *,
    run_id: str,
    config: Any,
    model_path: str,
    model_size: int | None,
    device_info: Mapping[str, Any] | None,
    exit_code: int | None = None,
    runtime_version: str | None = None,
    thermal: tuple[str | None, str | None] = (None, None),
    started_at: str | None = None,
    finished_at: str | None = None,
) -> dict[str, Any]:
    """A schema-valid result (runner benchmark_model) from the tool's combined output."""
    settings = _config_dict(config)
    device = {
        "model": None,
        "manufacturer": None,
        "board": None,
        "soc": None,
        "abi": None,
        "sdk": None,
        "android_version": None,
        "gpu_renderer": None,
    }
    device.update(dict(device_info or {}))
    result: dict[str, Any] = {
        "schema_version": app_contract.RESULT_SCHEMA_VERSION,
        "run_id": run_id,
        "status": app_contract.STATUS_OK,
        "message": None,
        "runner": "benchmark_model",
        "config": settings,
        "model": {"path": model_path, "size_bytes": model_size, "sha256": None},
        "latency": _latency(text),
        "memory": _memory(text),
        "delegate": _delegate(text, settings["delegate"]),
        "thermal": {"before": thermal[0], "after": thermal[1]},
        "device": device,
        "runtime": {"name": RUNTIME_NAME, "version": runtime_version, "app_version": None},
        "quality": None,
        "started_at": started_at,
        "finished_at": finished_at,
    }
    failure = classify_failure(text, exit_code)
    if failure is not None:
        result["status"], result["message"] = failure
        if result["status"] == "delegate_failed":
            result["delegate"].update(applied=False, message=failure[1])
    else:
        result["message"] = _runs_note(result, settings) or result["delegate"]["message"]
    return result


def _runs_note(result: dict[str, Any], settings: dict[str, Any]) -> str | None:
    stats = (result["latency"] or {}).get("stats") or {}
    count = stats.get("count")
    if count is not None and count != settings["num_runs"]:
        return (
            f"benchmark_model ran {count} timed runs, not {settings['num_runs']} "
            "(its --max_secs limit ended the runs early, or --min_secs made it run longer)"
        )
    return None


def _latency(text: str) -> dict[str, Any] | None:
    timings = _TIMINGS.search(text)
    stat_lines = _stat_lines(text)
    if timings is None and not stat_lines:
        return None
    # The tool prints the warm-up line first, then the timed runs' line.
    timed = stat_lines[1] if len(stat_lines) >= 2 else None
    warm = stat_lines[0] if stat_lines else None
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


def runtime_version(text: str) -> str | None:
    """benchmark_model names no version in its output; the flag dump sometimes does."""
    match = re.search(r"TensorFlow Lite version:? \[?([\w.\-]+)", text)
    return match[1] if match else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_benchmark_model(
    device: Device,
    binary: Path,
    model_remote: str,
    config: Any,
    timeout: float,
    *,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Push the binary, make it executable, run it on the model, parse what it printed.

    `run_id` names the result (the harness passes its own); a fresh one is made without it.
    """
    device.push(binary, REMOTE_BINARY, PUSH_TIMEOUT_S)
    chmod = f"chmod 755 {shlex.quote(REMOTE_BINARY)}"
    changed = device.shell(chmod, ops.SHORT_TIMEOUT_S)
    if not changed.ok:
        raise AdbError(
            "cannot make benchmark_model executable on the device",
            command=chmod,
            serial=device.serial,
            exit_code=changed.exit_code,
            stdout=changed.stdout,
            stderr=changed.stderr,
            hint="/data/local/tmp must allow executables; check the device's free space",
        )
    info = ops.device_info(device)
    before = ops.thermal_status(device)
    size = _remote_size(device, model_remote)
    started = _now()
    command = build_command(REMOTE_BINARY, model_remote, config, max_secs=timeout)
    ran = device.shell(command, timeout)
    finished = _now()
    after = ops.thermal_status(device)
    text = ran.stdout + ("\n" + ran.stderr if ran.stderr else "")
    return parse_output(
        text,
        run_id=run_id or f"bm-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        config=config,
        model_path=model_remote,
        model_size=size,
        device_info=info.as_schema_dict(),
        exit_code=ran.exit_code,
        runtime_version=runtime_version(text),
        thermal=(
            before.label if before is not None else None,
            after.label if after is not None else None,
        ),
        started_at=started,
        finished_at=finished,
    )


def _remote_size(device: Device, remote: str) -> int | None:
    result = device.shell(f"ls -l {shlex.quote(remote)}", ops.SHORT_TIMEOUT_S)
    if not result.ok:
        return None
    fields = result.stdout.split()
    # toybox ls -l: mode links owner group SIZE date time name
    return int(fields[4]) if len(fields) > 4 and fields[4].isdigit() else None
