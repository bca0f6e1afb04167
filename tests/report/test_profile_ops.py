"""`mobilize bench --profile-ops`: benchmark_model's per-op tables, asked for through the run's
config and kept in the result (the report shows the top op types: test_report_html.py)."""

from __future__ import annotations

from pathlib import Path

from mobilize.bench import benchmark_model
from mobilize.bench.benchmark_model import ProfiledConfig, run_benchmark_model
from mobilize.bench.config import BenchConfig
from mobilize.cli import main
from mobilize.device import ops
from mobilize.device.device import ShellResult

CAPTURE = (Path(__file__).parents[1] / "device_bench" / "captured" / "real"
           / "benchmark_model_op_profiling__meta-tflite-riscv-qemu-sci-notation.txt")
INFO = ops.DeviceInfo("SERIAL", "Pixel 7", "Google", "panther", "gs201", "arm64-v8a",
                      ("arm64-v8a",), 34, "14", "Mali-G710")


class ToolDevice:
    """Just enough of a device to run benchmark_model on: it prints a real capture."""

    serial = "SERIAL"

    def __init__(self) -> None:
        self.commands: list[str] = []

    def push(self, *_args: object) -> None:
        pass

    def shell(self, command: str, _timeout: float) -> ShellResult:
        self.commands.append(command)
        if benchmark_model.REMOTE_BINARY in command and "chmod" not in command:
            return ShellResult(command, 0, CAPTURE.read_text().partition("# ---\n")[2])
        return ShellResult(command, 0, "")


def _run(monkeypatch, tmp_path: Path, config: BenchConfig) -> tuple[ToolDevice, dict]:
    monkeypatch.setattr(ops, "device_info", lambda *_a, **_k: INFO)
    monkeypatch.setattr(ops, "thermal_status", lambda *_a, **_k: None)
    device = ToolDevice()
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    result = run_benchmark_model(device, binary, "/data/local/tmp/m.tflite", config, 60.0,
                                 run_id="r1")
    return device, result


def test_a_profiled_config_asks_the_tool_for_its_op_tables(monkeypatch, tmp_path) -> None:
    device, result = _run(monkeypatch, tmp_path, ProfiledConfig(threads=1))
    (command,) = [c for c in device.commands if "--graph=" in c]
    assert "--enable_op_profiling=true" in command
    summary = result["op_profile"]["regular_runs"]["summary_by_node_type"]
    assert summary[0]["node_type"] == "CONV_2D"
    assert result["config"] == BenchConfig(threads=1).as_schema_dict()  # schema unchanged


def test_a_plain_config_does_not_profile(monkeypatch, tmp_path) -> None:
    device, _ = _run(monkeypatch, tmp_path, BenchConfig(threads=1))
    (command,) = [c for c in device.commands if "--graph=" in c]
    assert "enable_op_profiling" not in command


def test_profile_ops_with_the_app_runner_is_a_usage_error(capsys, tmp_path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    code = main(["bench", str(model), "--profile-ops", "--serial", "nowhere:5555"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--profile-ops needs --runner benchmark-model" in err
    assert "--binary" in err  # the hint says how
