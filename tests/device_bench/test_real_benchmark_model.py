"""benchmark_model output and GPU-delegate logs captured on real devices (captured/real).

Expected values are spelled as the capture prints them (`avg=2.95034e+06` is 2950340.0).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jsonschema
import pytest

from mobilize.bench import app_contract
from mobilize.bench.benchmark_model import build_command, parse_output
from mobilize.bench.benchmark_model_parse import (
    UnsupportedOp,
    gpu_delegate_report,
    unsupported_ops,
)
from mobilize.bench.benchmark_model_profile import NodeTypeSummary, OpProfileRow, parse_op_profile

REAL = Path(__file__).with_name("captured") / "real"
SCHEMA = json.loads(app_contract.RESULT_SCHEMA_PATH.read_text())
NOT_SUPPORTED = "Operation is not supported."
NOT_MATCHED = "OP is supported, but tensor type isn't matched!"
NOT_COMPATIBLE = "OP is supported, but tensor type/shape isn't compatible."
DOESNT = "OP is supported, but tensor type/shape doesn't supported."


def capture(name: str) -> str:
    header, separator, body = (REAL / name).read_text().partition("# ---\n")
    assert separator and header.startswith("# source:"), name
    return body


# --- the GPU delegate's unsupported-op list --------------------------------------------------

GPU_LOGS = {
    # name: (ops with their reasons, ops on the GPU, ops on the CPU)
    "gpu_delegate_log__go-tflite-7-next-operations.txt": (
        [("ADD", ""), ("AVERAGE_POOL_2D", ""), ("CONV_2D", ""), ("DEPTHWISE_CONV_2D", ""),
         ("RESHAPE", "")], 0, 65),
    "gpu_delegate_log__object-detection-tflite-cpp-3-unknown-severity.txt": (
        [("CONCATENATION", NOT_MATCHED), ("CONV_2D", NOT_MATCHED),
         ("CUSTOM TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess"),
         ("DEPTHWISE_CONV_2D", NOT_MATCHED), ("LOGISTIC", NOT_MATCHED), ("RESHAPE", NOT_MATCHED)],
        0, 64),
    "gpu_delegate_log__tensorflow-35389-next-operations-blank-reasons.txt": (
        [("CONCATENATION", ""), ("CONV_2D", ""),
         ("CUSTOM TFLite_Detection_PostProcess", NOT_SUPPORTED), ("DEPTHWISE_CONV_2D", ""),
         ("LOGISTIC", ""), ("RESHAPE", "")], 0, 64),
    "gpu_delegate_log__tensorflow-41485-dequantize-blank.txt": (
        [("DEQUANTIZE", ""), ("RESIZE_BILINEAR", "")], 197, 1),
    "gpu_delegate_log__tensorflow-56301-benchmark-app-threadtime.txt": (  # cut: no summary
        [("UNPACK", NOT_SUPPORTED)], None, None),
    "gpu_delegate_log__tensorflow-56545-android-studio-logcat.txt": (
        [("ADD", NOT_COMPATIBLE), ("CAST", "Not supported cast case"), ("GATHER", NOT_SUPPORTED),
         ("MUL", NOT_COMPATIBLE),
         ("STRIDED_SLICE", "Max version supported: 2. Requested version 4."),
         ("UNPACK", NOT_SUPPORTED)], 357, 1283),
    "gpu_delegate_log__tensorflow-57907-movenet-trailing-spaces.txt": (
        [("ARG_MAX", NOT_SUPPORTED), ("CAST", "Not supported cast case"),
         ("CONCATENATION", DOESNT), ("DEQUANTIZE", ""), ("FLOOR_DIV", DOESNT),
         ("GATHER_ND", NOT_SUPPORTED), ("MUL", DOESNT), ("PACK", DOESNT), ("RESHAPE", DOESNT),
         ("SUB", DOESNT), ("UNPACK", NOT_SUPPORTED)], 97, 200),
    "gpu_delegate_log__webcam-detect-tflite-4-xnnpack-op.txt": (
        [("DELEGATE TfLiteXNNPackDelegate", NOT_SUPPORTED)], 1, 4),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GPU_LOGS))
def test_gpu_delegate_unsupported_ops(name: str) -> None:
    text = capture(name)
    ops, gpu, cpu = GPU_LOGS[name]
    report = gpu_delegate_report(text)
    assert report is not None
    assert report.unsupported == tuple(UnsupportedOp(op, reason) for op, reason in ops)
    assert (report.gpu_ops, report.cpu_ops) == (gpu, cpu)
    assert unsupported_ops(text) == sorted(op for op, _ in ops)


def test_gpu_ops_reach_the_result_when_the_delegate_reports_them() -> None:
    text = capture("gpu_delegate_log__tensorflow-41485-dequantize-blank.txt")
    result = _parse(text, "gpu", exit_code=0)
    assert result["delegate"]["fallback_ops"] == ["DEQUANTIZE", "RESIZE_BILINEAR"]


# --- benchmark_model runs -------------------------------------------------------------------

CONFIG = {"delegate": "cpu", "threads": 4, "warmup_runs": 1, "num_runs": 50,
          "gpu_precision": "fp32"}  # fmt: skip


def _parse(text: str, delegate: str, exit_code: int) -> dict:
    result = parse_output(
        text,
        run_id="bm-real",
        config={**CONFIG, "delegate": delegate},
        model_path="/data/local/tmp/m.tflite",
        model_size=None,
        device_info=None,
        exit_code=exit_code,
    )
    jsonschema.validate(result, SCHEMA)
    return result


RUNS = {
    # name: (delegate, exit code, status, (init, first, count, min, max, mean, std), memory)
    "benchmark_model_op_profiling__google-research-802-cpu-run.txt": (
        "cpu", 0, "ok", (17851.0, 2104.0, 1000, 1012.0, 1190.0, 1039.66, 22.0), None),
    "benchmark_model_op_profiling__meta-tflite-riscv-qemu-sci-notation.txt": (
        "cpu", 0, "ok", (17187.0, 3512391.0, 50, 2727568.0, 3189954.0, 2.95034e06, 109798.0),
        {"init_delta": 4.21094 * 1024, "overall_delta": 46.0859 * 1024, "peak_rss": None}),
    "benchmark_model_op_profiling__tensorflow-42507-peak-memory-header.txt": (
        "cpu", 0, "ok", (855.0, 49060.0, 50, 32641.0, 34005.0, 33209.4, 450.0),
        {"init_delta": None, "overall_delta": None, "peak_rss": 12.8672 * 1024}),
    "benchmark_model_op_profiling__tensorflow-43541-gpu-full-delegation.txt": (
        "gpu", 0, "ok", (870557.0, 130565.0, 50, 113737.0, 124776.0, 119375.0, 1948.0), None),
    # trimmed by the poster to the timed runs' line: it is the one whose avg is Inference (avg)
    "benchmark_model_op_profiling__yolov5s-android-mi11-cpu-timings.txt": (
        "cpu", 0, "ok", (16242.0, 360262.0, 50, 247067.0, 254474.0, 249684.0, 1442.0),
        {"init_delta": None, "overall_delta": None, "peak_rss": 138.809 * 1024}),
    "benchmark_model_op_profiling__yolov5s-android-mi11-memory-delta-wording.txt": (
        "cpu", 0, "ok", (1430.0, 247583.0, 50, 206675.0, 231957.0, 220000.0, 6795.0),
        {"init_delta": 5.66016 * 1024, "overall_delta": 140.508 * 1024, "peak_rss": None}),
    "benchmark_model_op_profiling__yolov5s-android-mi11-nnapi-failed.txt": (
        "nnapi", 1, "delegate_failed", None, None),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RUNS))
def test_benchmark_model_runs(name: str) -> None:
    delegate, exit_code, status, timings, memory = RUNS[name]
    result = _parse(capture(name), delegate, exit_code)
    assert result["status"] == status
    latency = result["latency"]
    if timings is None:
        assert latency is None
    else:
        stats = latency["stats"]
        assert (
            latency["init"], latency["first_inference"], stats["count"], stats["min"],
            stats["max"], stats["mean"], stats["std"],
        ) == pytest.approx(timings)  # fmt: skip
    if memory is None:
        assert result["memory"] is None
    else:
        figures = {key: result["memory"][key] for key in memory}
        assert figures == pytest.approx(memory)


def test_gpu_run_fully_delegated_and_nnapi_failure_message() -> None:
    gpu = _parse(capture("benchmark_model_op_profiling__tensorflow-43541-gpu-full-delegation.txt"),
                 "gpu", 0)  # fmt: skip
    assert gpu["delegate"] | {"message": None} == {
        "requested": "gpu", "applied": True, "name": "gpu", "nodes_delegated": None,
        "nodes_total": None, "partitions": 1, "fallback_ops": [], "message": None,
    }  # fmt: skip
    failed = _parse(capture("benchmark_model_op_profiling__yolov5s-android-mi11-nnapi-failed.txt"),
                    "nnapi", 1)  # fmt: skip
    assert failed["message"].startswith("benchmark_model: Failed to apply NNAPI delegate.; ")
    assert "Node number 248 (TfLiteNnapiDelegate) failed to prepare." in failed["message"]
    assert failed["delegate"]["applied"] is False


# --- --enable_op_profiling=true --------------------------------------------------------------

RISCV = "benchmark_model_op_profiling__meta-tflite-riscv-qemu-sci-notation.txt"
NNAPI_TABLES = "benchmark_model_op_profiling__yolov5s-android-mi11-nnapi-tables.txt"


def test_op_profile_of_a_cpu_run_with_scientific_notation() -> None:
    profile = parse_op_profile(capture(RISCV))
    assert profile is not None
    init, runs = profile.initialization, profile.regular_runs
    assert init is not None and runs is not None
    assert init.title == "Profiling Info for Benchmark Initialization"
    assert init.run_order == (
        OpProfileRow("AllocateTensors", 0.0, 1.356, 1.356, 100.0, 100.0, 0.0, 1,
                     "AllocateTensors/0"),
    )  # fmt: skip
    assert init.timings_us == {"count": 1, "curr": 1356.0}
    assert (init.nodes_executed, init.nodes_observed, init.memory_bytes) == (1, 1, {"count": 0})

    assert runs.title == "Operator-wise Profiling Info for Regular Benchmark Runs"
    assert len(runs.run_order) == 31 and len(runs.top_by_computation_time) == 10
    assert runs.run_order[0] == OpProfileRow(
        "CONV_2D", 0.066, 87.754, 60.957, 2.066, 2.066, 0.0, 1,
        "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0")  # fmt: skip
    assert runs.run_order[-1] == OpProfileRow(
        "SOFTMAX", 2950.011, 0.230, 0.233, 0.008, 100.0, 0.0, 1,
        "[MobilenetV1/Predictions/Reshape_1]:30")  # fmt: skip
    assert runs.top_by_computation_time[0] == OpProfileRow(
        "CONV_2D", 898.426, 263.724, 277.374, 9.403, 9.403, 0.0, 1,
        "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10")  # fmt: skip
    assert runs.summary_by_node_type == (
        NodeTypeSummary("CONV_2D", 15, 2651.853, 89.897, 89.897, 0.0, 15),
        NodeTypeSummary("DEPTHWISE_CONV_2D", 13, 296.919, 10.065, 99.962, 0.0, 13),
        NodeTypeSummary("AVERAGE_POOL_2D", 1, 0.869, 0.029, 99.992, 0.0, 1),
        NodeTypeSummary("SOFTMAX", 1, 0.232, 0.008, 99.999, 0.0, 1),
        NodeTypeSummary("SQUEEZE", 1, 0.016, 0.001, 100.0, 0.0, 1),
    )
    assert runs.timings_us == {"count": 50, "first": 2989660.0, "curr": 2912978.0,
                               "min": 2727203.0, "max": 3189476.0, "avg": 2.9499e06,
                               "std": 109770.0}  # fmt: skip
    assert (runs.nodes_executed, runs.nodes_observed) == (31, 31)


def test_op_profile_of_an_nnapi_run_shows_the_delegate_kernels() -> None:
    text = capture(NNAPI_TABLES)
    profile = parse_op_profile(text)
    assert profile is not None and profile.initialization and profile.regular_runs
    assert profile.initialization.run_order[0] == OpProfileRow(
        "ModifyGraphWithDelegate", 0.0, 413.346, 413.346, 56.670, 56.670, 1748.0, 1,
        "ModifyGraphWithDelegate/0")  # fmt: skip
    assert profile.initialization.run_order[1].times_called == 2
    runs = profile.regular_runs
    assert [row.node_type for row in runs.run_order].count("TfLiteNnapiDelegate") == 3
    assert runs.run_order[6].name == (
        "[model/tf.nn.silu_16/mul, model/tf.nn.silu_26/mul, model/tf.nn.silu_35/mul]:231"
    )
    assert runs.summary_by_node_type[0] == NodeTypeSummary(
        "TfLiteNnapiDelegate", 3, 149.483, 94.187, 94.187, 0.0, 3)  # fmt: skip
    assert runs.timings_us is not None and runs.timings_us["avg"] == 158715.0
    # The posted excerpt has no Replacing line; the profile shows the NNAPI kernels ran.
    result = _parse(text, "nnapi", 0)
    assert result["delegate"]["applied"] is True and result["delegate"]["partitions"] == 3
    assert result["op_profile"] == json.loads(json.dumps(profile.as_dict()))
    assert result["op_profile"]["regular_runs"]["summary_by_node_type"][1] == {
        "node_type": "STRIDED_SLICE", "count": 6, "avg_ms": 8.347, "avg_percent": 5.259,
        "cdf_percent": 99.446, "mem_kb": 0.0, "times_called": 6,
    }  # fmt: skip


def test_op_profile_cut_after_the_header_and_runs_without_profiling() -> None:
    profile = parse_op_profile(
        capture("benchmark_model_op_profiling__tensorflow-42507-peak-memory-header.txt")
    )
    assert profile is not None and profile.regular_runs is None
    assert profile.initialization is not None and profile.initialization.run_order == ()
    for name in RUNS:
        if "riscv" not in name and "42507" not in name:
            assert parse_op_profile(capture(name)) is None, name
            assert "op_profile" not in _parse(capture(name), RUNS[name][0], RUNS[name][1])


def test_op_profile_row_without_tabs_and_without_the_start_column() -> None:
    """A copy that lost its TABs, and the column set of builds that dropped [start]."""
    text = (
        "Operator-wise Profiling Info for Regular Benchmark Runs:\n"
        "============================== Run Order ==============================\n"
        "   [node type]   [first]  [avg ms]   [%]   [cdf%]  [mem KB]  [times called]  [Name]\n"
        "   CONV_2D   87.754   60.957   2.066%   2.066%   0.000   1   [a b]:0\n"
    )
    profile = parse_op_profile(text)
    assert profile is not None and profile.regular_runs is not None
    assert profile.regular_runs.run_order == (
        OpProfileRow("CONV_2D", None, 87.754, 60.957, 2.066, 2.066, 0.0, 1, "[a b]:0"),
    )


def test_command_asks_for_op_profiling_only_with_profile_ops() -> None:
    plain = shlex.split(build_command("/bm", "/m.tflite", CONFIG))
    assert "--enable_op_profiling=true" not in plain
    profiled = shlex.split(build_command("/bm", "/m.tflite", CONFIG, profile_ops=True))
    assert "--enable_op_profiling=true" in profiled and profiled[-1] == "2>&1"


COVERED = {*GPU_LOGS, *RUNS, NNAPI_TABLES}


def test_every_benchmark_model_capture_is_covered() -> None:
    prefixes = ("benchmark_model_op_profiling__", "gpu_delegate_log__")
    on_disk = {path.name for path in REAL.glob("*.txt") if path.name.startswith(prefixes)}
    assert on_disk == COVERED
