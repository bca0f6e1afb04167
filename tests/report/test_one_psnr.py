"""One PSNR to gate on: the export, the on-phone gate and the sweep measure the worst single
image the same way, so a threshold between the worst image and the pooled figure fails
everywhere alike; and a sweep run from another folder still finds the source model.

The export is made the common way, from the model's own folder with a relative reference
(`tiny_model.py:build --out tiny`); the sweep then runs from a sibling folder, so the model is
found only through the export folder's parent (mobilize.contract.reference).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from mobilize.cli import main
from mobilize.errors import QualityGateError
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.pipeline import check_outcome, run_export
from tests.report.conftest import device_args

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
TINY_MODEL = Path(__file__).with_name("tiny_model.py")


def test_export_bench_and_sweep_gate_on_the_same_worst_image_psnr(
        capsys, emu, tmp_path, monkeypatch) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    shutil.copy(TINY_MODEL, project / "tiny_model.py")
    monkeypatch.chdir(project)
    config = ExportConfig(model_ref="tiny_model.py:build", out_dir=Path("tiny"),
                          targets=(Target.FP32, Target.INT8), calib_samples=8,
                          verify_samples=2)
    result = run_export(config)
    metadata = json.loads((project / "tiny" / "metadata.json").read_text())
    assert metadata["source_model"]["ref"] == "tiny_model.py:build"  # relative, as given
    verification = next(a for a in metadata["artifacts"]
                        if a["target"] == "tflite-int8")["verification"]
    worst, pooled = verification["worst_image_psnr_db"], verification["psnr_db"]
    output = verification["outputs"][0]
    assert verification["gate"] == "worst_image_psnr_db"
    assert worst == pytest.approx(min(output["image_psnr_db"]))
    assert len(output["image_psnr_db"]) == 2 and worst < pooled
    threshold = round((worst + pooled) / 2, 3)  # above the worst image, under the pooled
    check_outcome(replace(config, min_psnr=worst - 0.01), result)
    with pytest.raises(QualityGateError, match="tflite-int8"):
        check_outcome(replace(config, min_psnr=threshold), result)  # export: gated on worst

    monkeypatch.chdir(elsewhere)
    code = main(["sweep", str(project / "tiny"), "--delegates", "cpu", "--repeat", "1",
                 "--runs", "4", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
                 "--quality-samples", "2", "--min-psnr", f"{threshold}", "--report",
                 str(tmp_path / "sweep.html"), "--json", str(tmp_path / "sweep.json"),
                 *device_args(emu, tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err  # fp32 qualifies
    payload = json.loads((tmp_path / "sweep.json").read_text())
    int8 = next(v for v in payload["verdicts"] if v["variant"] == "int8")
    # the same file on the same CPU: the phone measures what the export measured
    assert int8["worst_psnr_db"] == pytest.approx(worst, abs=0.05)
    assert int8["pooled_psnr_db"] == pytest.approx(pooled, abs=0.05)
    assert int8["verdict"] == "worse picture"  # sweep: gated on the worst image too
    assert f"worst PSNR {int8['worst_psnr_db']:.1f} dB < {threshold:g} dB" in captured.out
    assert "[1/2]" in captured.err and "[2/2]" in captured.err and "ETA" in captured.err
    report = (tmp_path / "sweep.html").read_text()
    assert "tiny_model.py:build" in report and "worst PSNR dB" in report

    code = main(["bench", str(project / "tiny"), "--target", "tflite-int8", "--check-quality",
                 "--min-psnr", f"{threshold}", "--runs", "3", "--warmup", "1", "--threads", "1",
                 "--cooldown-timeout", "5", *device_args(emu, tmp_path)])
    err = capsys.readouterr().err
    assert code == 6, err  # bench --check-quality: gated on the worst image as well
    assert f"< {threshold:g} dB" in err and "(pooled " in err
