"""The fake benchmark app's work, run in its own process so its memory is its own.

The emulator starts `python -m mobilize.emulator.app_worker REQUEST.json`; this reads
the request (host paths, the run's settings), runs the model with LiteRT's Interpreter on
the host CPU the way the Android app measures it (init, first inference, warm-ups, timed
runs, in microseconds), and writes a partial result JSON to the request's `partial_path`.
The emulator completes it (thermal status after the run, finish time) and publishes it
atomically at the app's result path, as the app does on a phone.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobilize.results.stats import summarize

_GPU_MESSAGE = (
    "no {name} delegate on this device: the emulated device runs models on the host CPU; "
    "this run used the CPU (XNNPACK)"
)


def _proc_status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _pss_kb() -> float | None:
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _native_heap_kb() -> float | None:
    """Allocated bytes of the C heap (what Debug.getNativeHeapAllocatedSize reports)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        return (info.uordblks + info.hblkhd) / 1024.0
    except (OSError, AttributeError):
        return None


def memory_snapshot() -> dict[str, Any]:
    return {
        "unit": "kB",
        "peak_rss": _proc_status_kb("VmHWM"),
        "rss": _proc_status_kb("VmRSS"),
        "pss": _pss_kb(),
        "native_heap": _native_heap_kb(),
        "init_delta": None,
        "overall_delta": None,
    }


def _tensor(detail: dict) -> dict[str, Any]:
    return {
        "name": str(detail["name"]),
        "shape": [int(v) for v in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
    }


def _fill_inputs(interpreter, rng: np.random.Generator) -> None:
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(v) for v in detail["shape"])
        if np.issubdtype(dtype, np.floating):
            data = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        interpreter.set_tensor(detail["index"], data)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _timed_invoke(interpreter) -> float:
    start = time.perf_counter_ns()
    interpreter.invoke()
    return (time.perf_counter_ns() - start) / 1000.0


def _delegated_nodes(ops: list[dict]) -> set[int]:
    """Original nodes a delegate replaced: walk back from each delegate node's outputs
    through the producing nodes until reaching the delegate node's own inputs."""
    producers = {}
    for op in ops:
        if op["op_name"] != "DELEGATE":
            for tensor in op["outputs"]:
                producers[int(tensor)] = op
    covered: set[int] = set()
    for delegate in (op for op in ops if op["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in delegate["inputs"]}
        pending = [int(t) for t in delegate["outputs"]]
        while pending:
            tensor = pending.pop()
            producer = producers.get(tensor)
            if tensor in boundary or producer is None or producer["index"] in covered:
                continue
            covered.add(producer["index"])
            pending.extend(int(t) for t in producer["inputs"])
    return covered


def _delegate_info(requested: str, ops: list[dict]) -> dict[str, Any]:
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    covered = _delegated_nodes(ops)
    fallback = sorted({op["op_name"] for op in originals if op["index"] not in covered})
    info: dict[str, Any] = {
        "requested": requested,
        "applied": requested == "cpu",
        "name": "xnnpack" if delegates else "builtin",
        "nodes_delegated": len(covered),
        "nodes_total": len(originals),
        "partitions": len(delegates),
        "fallback_ops": fallback if delegates else [],
        "message": None,
    }
    if requested in ("gpu", "nnapi"):
        # What a phone without that accelerator reports: nothing taken by it.
        info.update(
            message=_GPU_MESSAGE.format(name=requested.upper()),
            nodes_delegated=0,
            partitions=0,
            fallback_ops=sorted({op["op_name"] for op in originals}),
        )
    return info


def _run_quality(interpreter, inputs_dir: Path, outputs_dir: Path, device_outputs_dir: str) -> dict:
    outputs_dir.mkdir(parents=True, exist_ok=True)
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    written = []
    for source in sorted(inputs_dir.glob("*.npy")):
        data = np.load(source).astype(np.dtype(input_detail["dtype"]), copy=False)
        expected = tuple(int(v) for v in input_detail["shape"])
        if data.shape != expected:
            data = data.reshape(expected)
        interpreter.set_tensor(input_detail["index"], data)
        interpreter.invoke()
        temporary = outputs_dir / (source.stem + ".tmp.npy")
        np.save(temporary, interpreter.get_tensor(output_detail["index"]))
        os.replace(temporary, outputs_dir / source.name)
        written.append(source.name)
    return {"outputs_dir": device_outputs_dir, "files": written}


def run(request: dict[str, Any]) -> dict[str, Any]:
    config = request["config"]
    result: dict[str, Any] = request["result_template"]
    model_path = Path(request["model_host_path"])
    if not model_path.is_file():
        result.update(
            status="model_not_found", message=f"model file {result['model']['path']} does not exist"
        )
        result["memory"] = memory_snapshot()
        return result
    result["model"]["size_bytes"] = model_path.stat().st_size
    result["model"]["sha256"] = _sha256(model_path)

    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter_ns()
    try:
        if request.get("fail_model_load"):
            raise ValueError("Model provided has model identifier '\\0\\0\\0\\0', should be 'TFL3'")
        interpreter = Interpreter(model_path=str(model_path), num_threads=config["threads"])
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        result.update(status="model_load_failed", message=f"could not load the model: {error}")
        result["memory"] = memory_snapshot()
        return result
    init_us = (time.perf_counter_ns() - start) / 1000.0
    result["model"]["inputs"] = [_tensor(d) for d in interpreter.get_input_details()]
    result["model"]["outputs"] = [_tensor(d) for d in interpreter.get_output_details()]
    result["delegate"] = _delegate_info(config["delegate"], interpreter._get_ops_details())

    if request.get("crash"):
        # The fault asks the app to die here, as an uncaught exception would kill it.
        sys.stderr.write("java.lang.IllegalStateException: injected crash after model load\n")
        sys.stderr.flush()
        os._exit(1)

    rng = np.random.default_rng(0)
    _fill_inputs(interpreter, rng)
    try:
        first = _timed_invoke(interpreter)
        warmup = [_timed_invoke(interpreter) for _ in range(config["warmup_runs"])]
        samples = [_timed_invoke(interpreter) for _ in range(config["num_runs"])]
    except RuntimeError as error:
        result.update(status="inference_failed", message=f"inference failed: {error}")
        result["memory"] = memory_snapshot()
        return result
    result["latency"] = {
        "unit": "us",
        "init": init_us,
        "first_inference": first,
        "warmup": warmup,
        "samples": samples,
        "stats": summarize(samples),
    }
    if request.get("quality_inputs_host"):
        result["quality"] = _run_quality(
            interpreter,
            Path(request["quality_inputs_host"]),
            Path(request["quality_outputs_host"]),
            request["quality_outputs_device"],
        )
    result["memory"] = memory_snapshot()
    result.update(status="ok", message=result["delegate"]["message"])
    return result


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = run(request)
    partial = Path(request["partial_path"])
    temporary = partial.with_suffix(".tmp")
    temporary.write_text(json.dumps(result), encoding="utf-8")
    os.replace(temporary, partial)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
