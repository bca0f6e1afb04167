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
- The GPU delegate's `Following operations are not supported by GPU delegate:` list (older
  builds: `Next operations ...`; an op may have a blank reason) -> delegate.fallback_ops.
- Its ERROR lines (missing file, bad flatbuffer, `Failed to apply GPU delegate.`,
  `Failed to allocate tensors!`, `Node number N (OP) failed to invoke.`) -> a failure status
  with the tool's own words as the message.
- The device's shell or linker saying the binary itself could not start (another ABI's ELF,
  no execute permission, a missing ELF interpreter: benchmark_model_exec.exec_failure) ->
  no result at all but a device error (benchmark_model_exec.cannot_run_error): the model
  never ran.
- With --enable_op_profiling=true (`profile_ops`), the "Run Order", "Top by Computation Time"
  and "Summary by node type" tables -> an extra top-level `op_profile` object (the schema
  allows properties it does not name): {"initialization": ..., "regular_runs": ...}, each
  OpProfileSection as a dict (benchmark_model_profile.OpProfile.as_dict). Absent without them.

The pure parsing lives in benchmark_model_parse.py (the op-profiling tables in
benchmark_model_profile.py, a binary that could not start in benchmark_model_exec.py);
this module builds the command line, assembles the result and runs the tool on a device.
"""

from __future__ import annotations

import datetime as dt
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilize.bench import app_contract
from mobilize.bench import benchmark_model_parse as bmp
from mobilize.bench.benchmark_model_exec import cannot_run_error, exec_failure
from mobilize.bench.benchmark_model_parse import (
    DELEGATE_KERNEL_NAMES,
    classify_failure,
    runtime_version,
)
from mobilize.bench.benchmark_model_profile import OpProfile, parse_op_profile
from mobilize.bench.config import BenchConfig
from mobilize.device import ops
from mobilize.device.device import Device
from mobilize.device.errors import AdbError

REMOTE_BINARY = "/data/local/tmp/mobilize_benchmark_model"
PUSH_TIMEOUT_S = 120.0
RUNTIME_NAME = "tflite-benchmark_model"

__all__ = [
    "REMOTE_BINARY",
    "ProfiledConfig",
    "build_command",
    "parse_output",
    "run_benchmark_model",
]

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
    profile_ops: bool = False,
    max_secs: float | None = None,
    enable_op_profiling: bool = False,
) -> str:
    """The device shell line that runs benchmark_model with the run's settings.

    --min_secs=0 and --warmup_min_secs=0 make the tool run exactly the asked number of
    warm-ups and runs (by default it keeps going for 0.5 s and 1 s); stderr is merged
    because the tool logs everything there. `profile_ops` adds --enable_op_profiling=true
    (per-op tables, read into the result's `op_profile`); `enable_op_profiling` is its
    older name.
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
    if profile_ops or enable_op_profiling:
        flags.append(_flag("enable_op_profiling", True))
    return " ".join([shlex.quote(binary_remote), *flags, "2>&1"])


@dataclass(frozen=True)
class ProfiledConfig(BenchConfig):
    """A BenchConfig whose runs also ask benchmark_model for its per-op tables
    (`mobilize bench --profile-ops`): it travels through the session unchanged, and
    run_benchmark_model turns it into --enable_op_profiling=true."""

    profile_ops: bool = True


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
        "latency": bmp.latency(text),
        "memory": bmp.memory(text),
        "delegate": bmp.delegate(text, settings["delegate"]),
        "thermal": {"before": thermal[0], "after": thermal[1]},
        "device": device,
        "runtime": {"name": RUNTIME_NAME, "version": runtime_version, "app_version": None},
        "quality": None,
        "started_at": started_at,
        "finished_at": finished_at,
    }
    profile = parse_op_profile(text)
    if profile is not None:
        result["op_profile"] = profile.as_dict()
        _delegate_from_profile(result["delegate"], profile)
    failure = classify_failure(text, exit_code)
    if failure is not None:
        result["status"], result["message"] = failure
        if result["status"] == "delegate_failed":
            result["delegate"].update(applied=False, message=failure[1])
    else:
        result["message"] = _runs_note(result, settings) or result["delegate"]["message"]
    return result


def _delegate_from_profile(info: dict[str, Any], profile: OpProfile) -> None:
    """A delegate whose kernels ran in the timed runs' profile was applied, even where the
    tool printed no Replacing / Explicitly applied line (partitions: its kernels' count)."""
    runs = profile.regular_runs
    names = DELEGATE_KERNEL_NAMES[info["requested"]]
    kernels = [row for row in (runs.summary_by_node_type if runs else ()) if row.node_type in names]
    if not kernels or (info["applied"] and info["name"] != "builtin"):
        return
    if info["partitions"] is None:
        info["partitions"] = sum(row.count for row in kernels)
    info.update(applied=True, message=None)
    info["name"] = "xnnpack" if info["requested"] == "cpu" else info["requested"]


def _runs_note(result: dict[str, Any], settings: dict[str, Any]) -> str | None:
    stats = (result["latency"] or {}).get("stats") or {}
    count = stats.get("count")
    if count is not None and count != settings["num_runs"]:
        return (
            f"benchmark_model ran {count} timed runs, not {settings['num_runs']} "
            "(its --max_secs limit ended the runs early, or --min_secs made it run longer)"
        )
    return None


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
    profile_ops: bool = False,
) -> dict[str, Any]:
    """Push the binary, make it executable, run it on the model, parse what it printed.

    `run_id` names the result (the harness passes its own); a fresh one is made without it.
    `profile_ops` (or a ProfiledConfig) runs the tool with --enable_op_profiling=true: the
    result gets `op_profile`.
    """
    profile_ops = profile_ops or bool(getattr(config, "profile_ops", False))
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
    command = build_command(
        REMOTE_BINARY, model_remote, config, max_secs=timeout, profile_ops=profile_ops
    )
    ran = device.shell(command, timeout)
    refused = exec_failure(ran.stdout + "\n" + ran.stderr, REMOTE_BINARY, ran.exit_code)
    if refused is not None:  # the binary never ran: there is no result of the model
        raise cannot_run_error(
            refused, abi=info.abi, command=command, ran=ran, serial=device.serial
        )
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
