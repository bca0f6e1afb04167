"""`mobilize export --json -` and `mobilize sweep --json -`: stdout carries the JSON alone,
the progress and the tables go to stderr. Real conversions and an emulated device: slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobilize.cli import main
from tests.report.conftest import TINY_MODEL, device_args

pytestmark = pytest.mark.slow


def test_export_json_to_stdout_is_the_metadata(tmp_path: Path, capsys) -> None:
    out = tmp_path / "export"
    code = main(["export", f"{TINY_MODEL}:build", "--target", "tflite-fp32", "--out", str(out),
                 "--calib-samples", "4", "--verify-samples", "1", "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    assert payload == json.loads((out / "metadata.json").read_text())
    (artifact,) = payload["artifacts"]
    assert artifact["target"] == "tflite-fp32" and (out / artifact["file"]).is_file()
    assert "PSNR dB" in captured.err  # the comparison table went to stderr


@pytest.mark.emulator
def test_sweep_json_to_stdout(tiny_export: Path, emu, tmp_path: Path, capsys) -> None:
    code = main(["sweep", str(tiny_export), "--delegates", "cpu,gpu", "--repeat", "1",
                 "--runs", "4", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
                 "--quality-samples", "1", "--report", str(tmp_path / "sweep.html"),
                 *device_args(emu, tmp_path), "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    assert payload["winner"]["delegate"] == "cpu"
    verdicts = {(v["variant"], v["delegate"]): v["verdict"] for v in payload["verdicts"]}
    assert len(verdicts) == 6 and verdicts[("fp32", "gpu")] == "delegate fell back to CPU"
    assert len(payload["runs"]) == 6 and payload["report"].endswith("sweep.html")
    assert "recommendation:" in captured.err and "Sweep (quality threshold" in captured.err
