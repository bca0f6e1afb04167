"""benchmark_model runner: command line, output parsing into the result schema, device flow.

The outputs under data/ are reconstructed from the tool's source (see each file's header):
no phone is attached here, so none was captured from a device.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jsonschema
import pytest

from mobilize.bench import app_contract
from mobilize.bench.benchmark_model import (
    REMOTE_BINARY,
    build_command,
    parse_output,
    run_benchmark_model,
)
from mobilize.bench.benchmark_model_parse import classify_failure
from mobilize.bench.config import BenchConfig, Delegate, GpuPrecision
from mobilize.device.device import ShellResult

DATA = Path(__file__).with_name("data")
SCHEMA = json.loads(app_contract.RESULT_SCHEMA_PATH.read_text())
DEVICE = {"model": "Pixel 8", "abi": "arm64-v8a", "sdk": 34}


def fixture(name: str) -> str:
    """The tool's output without the provenance header."""
    lines = (DATA / name).read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("#"))


def parse(name: str, config: BenchConfig, exit_code: int = 0) -> dict:
    result = parse_output(
        fixture(name),
        run_id="bm-1",
        config=config,
        model_path="/data/local/tmp/mobilize/m.tflite",
        model_size=3_412_340,
        device_info=DEVICE,
        exit_code=exit_code,
    )
    jsonschema.validate(result, SCHEMA)
    return result


GPU = BenchConfig(delegate=Delegate.GPU, threads=4, warmup_runs=5, num_runs=50)


def test_command_quotes_every_argument_and_asks_for_exact_run_counts():
    hostile = "/data/local/tmp/mobilize/a b'; rm -rf /;$(x).tflite"
    command = build_command("/data/local/tmp/bm tool", hostile, GPU, enable_op_profiling=True)
    words = shlex.split(command)
    assert words[0] == "/data/local/tmp/bm tool"
    assert f"--graph={hostile}" in words
    for flag in (
        "--num_threads=4",
        "--warmup_runs=5",
        "--num_runs=50",
        "--min_secs=0",
        "--warmup_min_secs=0",
        "--use_gpu=true",
        "--use_nnapi=false",
        "--use_xnnpack=false",
        "--gpu_precision_loss_allowed=true",
        "--report_peak_memory_footprint=true",
        "--enable_op_profiling=true",
    ):
        assert flag in words, flag
    assert words[-1] == "2>&1"


def test_command_for_cpu_fp32_uses_xnnpack_and_no_precision_loss():
    config = BenchConfig(delegate=Delegate.CPU, gpu_precision=GpuPrecision.FP32, threads=2)
    words = shlex.split(build_command("/bin/bm", "/m.tflite", config))
    assert "--use_xnnpack=true" in words and "--use_gpu=false" in words
    assert "--gpu_precision_loss_allowed=false" in words
    assert not any(word.startswith("--enable_op_profiling") for word in words)


def test_gpu_full_delegation():
    result = parse("gpu_full.txt", GPU)
    assert result["status"] == "ok" and result["runner"] == "benchmark_model"
    latency = result["latency"]
    assert latency["init"] == 812442 and latency["first_inference"] == 41873
    assert latency["samples"] == [] and latency["warmup"] == []
    assert latency["stats"] == {
        "count": 50,
        "min": 11902.0,
        "max": 13560.0,
        "mean": 12243.7,
        "std": 301.0,
        "p50": None,
        "p90": None,
        "p99": None,
    }
    delegate = result["delegate"]
    assert delegate["applied"] is True and delegate["name"] == "gpu"
    assert (delegate["nodes_delegated"], delegate["nodes_total"], delegate["partitions"]) == (
        42,
        42,
        1,
    )
    memory = result["memory"]
    assert memory["init_delta"] == pytest.approx(61.2305 * 1024)
    assert memory["overall_delta"] == pytest.approx(68.4727 * 1024)
    assert memory["peak_rss"] == pytest.approx(75.9375 * 1024)
    assert result["message"] is None


def test_cpu_xnnpack_keeps_the_tools_percentiles_apart():
    config = BenchConfig(delegate=Delegate.CPU, threads=2, warmup_runs=3, num_runs=20)
    result = parse("cpu_xnnpack_percentiles.txt", config)
    stats = result["latency"]["stats"]
    assert stats["count"] == 20 and stats["mean"] == 25233.6 and stats["p50"] is None
    assert stats["tool_percentiles"] == {"p5": 24655.0, "median": 25042.0, "p95": 26931.0}
    delegate = result["delegate"]
    assert delegate["name"] == "xnnpack" and delegate["applied"] is True
    assert (delegate["nodes_delegated"], delegate["nodes_total"], delegate["partitions"]) == (
        30,
        31,
        2,
    )
    assert result["memory"]["peak_rss"] == pytest.approx(14.8633 * 1024)
    assert result["memory"]["init_delta"] is None


def test_gpu_request_that_ran_on_cpu_is_not_labelled_gpu():
    config = BenchConfig(delegate=Delegate.GPU, warmup_runs=1, num_runs=4)
    result = parse("gpu_unsupported_ran_on_cpu.txt", config)
    assert result["status"] == "ok"
    delegate = result["delegate"]
    assert delegate["applied"] is False and delegate["name"] == "builtin"
    assert "GPU acceleration is unsupported on this platform" in delegate["message"]
    assert result["message"] == delegate["message"]
    stats = result["latency"]["stats"]  # "count=4 curr=1870(all same)"
    assert (stats["count"], stats["min"], stats["max"], stats["mean"], stats["std"]) == (
        4,
        1870.0,
        1870.0,
        1870.0,
        0.0,
    )


def test_nnapi_partial_delegation():
    config = BenchConfig(delegate=Delegate.NNAPI, warmup_runs=2, num_runs=10)
    result = parse("nnapi_partial.txt", config)
    delegate = result["delegate"]
    assert delegate["applied"] is True and delegate["name"] == "nnapi"
    assert (delegate["nodes_delegated"], delegate["nodes_total"], delegate["partitions"]) == (
        20,
        31,
        3,
    )


def test_fewer_runs_than_asked_is_said():
    config = BenchConfig(delegate=Delegate.NNAPI, warmup_runs=2, num_runs=100)
    result = parse("nnapi_partial.txt", config)
    assert result["status"] == "ok"
    assert "ran 10 timed runs, not 100" in result["message"]


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("error_model_missing.txt", "model_not_found", "Could not open"),
        ("error_not_a_model.txt", "model_load_failed", "should be 'TFL3'"),
        ("error_gpu_apply_failed.txt", "delegate_failed", "Failed to apply GPU delegate."),
        ("error_allocate_tensors.txt", "model_load_failed", "Failed to allocate tensors!"),
        ("error_invoke_failed.txt", "inference_failed", "(RESHAPE) failed to invoke"),
    ],
)
def test_failures_become_statuses_with_the_tools_words(name, status, words):
    result = parse(name, GPU, exit_code=1)
    assert result["status"] == status
    assert words in result["message"]
    assert result["message"].startswith("benchmark_model: ")
    if status == "delegate_failed":
        assert result["delegate"]["applied"] is False
        assert "AdaIN" in result["message"]


def test_silent_failure_names_the_exit_code():
    assert classify_failure("INFO: STARTING!\nSegmentation fault", 139) == (
        "inference_failed",
        "benchmark_model printed no timings (exit code 139): INFO: STARTING! / Segmentation fault",
    )
    assert classify_failure(fixture("gpu_full.txt"), 0) is None


class RecordingDevice:
    """Answers the Device protocol from a script; the real binary cannot run here."""

    serial = "emulated-1"

    def __init__(self, tool_output: str, tool_exit: int = 0) -> None:
        self.tool_output = tool_output
        self.tool_exit = tool_exit
        self.pushed: list[tuple[Path, str]] = []
        self.commands: list[str] = []

    def push(self, local: Path, remote: str, timeout: float) -> None:
        self.pushed.append((local, remote))

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        raise AssertionError("nothing to pull")

    def close(self) -> None:
        pass

    def shell(self, command: str, timeout: float) -> ShellResult:
        self.commands.append(command)
        if command == "getprop":
            return ShellResult(
                command,
                0,
                "[ro.product.model]: [Pixel 8]\n[ro.product.cpu.abi]: [arm64-v8a]\n"
                "[ro.build.version.sdk]: [34]\n",
            )
        if command.startswith("dumpsys thermalservice"):
            return ShellResult(command, 0, "Thermal Status: 0\n")
        if command.startswith("ls -l"):
            return ShellResult(
                command, 0, "-rw-rw-rw- 1 shell shell 3412340 2026-11-23 08:45 /m.tflite\n"
            )
        if command.startswith(shlex.quote(REMOTE_BINARY)):
            return ShellResult(command, self.tool_exit, self.tool_output)
        return ShellResult(command, 0, "")


def test_run_pushes_marks_executable_runs_and_parses(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    device = RecordingDevice(fixture("gpu_full.txt"))
    result = run_benchmark_model(device, binary, "/data/local/tmp/mobilize/m.tflite", GPU, 60.0)
    jsonschema.validate(result, SCHEMA)
    assert device.pushed == [(binary, REMOTE_BINARY)]
    assert f"chmod 755 {REMOTE_BINARY}" in device.commands
    run = next(c for c in device.commands if c.startswith(REMOTE_BINARY))
    assert "--graph=/data/local/tmp/mobilize/m.tflite" in shlex.split(run)
    assert "--max_secs=60" in shlex.split(run)
    assert result["model"]["size_bytes"] == 3412340
    assert result["device"]["model"] == "Pixel 8" and result["device"]["sdk"] == 34
    assert result["thermal"] == {"before": "none", "after": "none"}
    assert result["latency"]["stats"]["mean"] == 12243.7


def test_run_reports_a_failed_run_as_a_status(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    device = RecordingDevice(fixture("error_model_missing.txt"), tool_exit=1)
    result = run_benchmark_model(device, binary, "/data/local/tmp/mobilize/missing.tflite", GPU, 60)
    jsonschema.validate(result, SCHEMA)
    assert result["status"] == "model_not_found"
    assert result["latency"] is None


def test_gpu_partial_names_the_ops_left_on_the_cpu():
    result = parse("gpu_partial_fallback.txt", GPU)
    delegate = result["delegate"]
    assert delegate["applied"] is True
    assert (delegate["nodes_delegated"], delegate["nodes_total"], delegate["partitions"]) == (
        40,
        44,
        3,
    )
    assert delegate["fallback_ops"] == ["RSQRT", "SQUARED_DIFFERENCE"]
    assert result["memory"] is None  # this build printed no memory lines


def test_an_error_line_in_a_clean_run_is_not_a_failure():
    # Some delegates log an ERROR and fall back; the tool still exits 0 with its timings.
    text = (
        "ERROR: Attempting to use a delegate that only supports static-sized tensors with a "
        "graph that has dynamic-sized tensors.\n" + fixture("gpu_unsupported_ran_on_cpu.txt")
    )
    assert classify_failure(text, 0) is None
    assert classify_failure(text, None) is None  # no marker of a failure in it either
    assert classify_failure(text, 1) == (
        "inference_failed",
        "benchmark_model exited with code 1: Attempting to use a delegate that "
        "only supports static-sized tensors with a graph that has dynamic-sized tensors.",
    )


def test_run_id_from_the_harness_names_the_result(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    device = RecordingDevice(fixture("gpu_full.txt"))
    result = run_benchmark_model(device, binary, "/m.tflite", GPU, 60, run_id="20261123-abc")
    assert result["run_id"] == "20261123-abc"


def test_large_figures_in_exponent_notation():
    # std::ostream prints doubles with 6 significant digits: a 2.7 s average is 2.71985e+06.
    text = (
        "INFO: count=1 curr=2732148\n\n"
        "INFO: count=10 first=2653894 curr=2709263 min=2640862 max=3025403 avg=2.71985e+06 "
        "std=105101\n\n"
        "INFO: Inference timings in us: Init: 458883, First inference: 2732148, "
        "Warmup (avg): 2.73215e+06, Inference (avg): 2.71985e+06\n"
    )
    config = BenchConfig(delegate=Delegate.CPU, warmup_runs=1, num_runs=10)
    result = parse_output(
        text,
        run_id="r",
        config=config,
        model_path="/m",
        model_size=None,
        device_info=None,
        exit_code=0,
    )
    jsonschema.validate(result, SCHEMA)
    assert result["latency"]["stats"]["mean"] == 2719850.0
    assert result["latency"]["stats"]["max"] == 3025403.0
    assert result["latency"]["first_inference"] == 2732148.0
    assert result["delegate"]["name"] == "builtin"  # no XNNPACK line: the builtin kernels ran
