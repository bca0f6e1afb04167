"""`--finetune STEPS`: quantization-aware fine-tuning before a tflite-int8 export (issue 15).

The .tflite and model.onnx come from the fine-tuned student; verification compares against
the user's original model; finetuned.pt and metadata.json say what was done."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from mobilize.cli import main
from mobilize.contract.specs import InputSpec
from mobilize.errors import UsageError
from mobilize.exporter.calibration import build_representative_data
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.fake_quant import insert_fake_quant
from mobilize.exporter.fake_quant_equalize import equalize_before_instance_norm
from mobilize.exporter.fake_quant_quantizers import QuantInstanceNorm
from mobilize.exporter.finetune_report import FINETUNED_FILE
from mobilize.exporter.pipeline import run_export
from mobilize.exporter.verify import verify
from tests.exporter.families import FAMILIES, MINUS_ONE_ONE

FAMILIES_FILE = Path(__file__).with_name("families.py")
SIZE = 32
SHAPE = (1, 3, SIZE, SIZE)
INPUTS = (InputSpec("image", SHAPE, MINUS_ONE_ONE),)


def _config(out: Path, **overrides: object) -> ExportConfig:
    settings: dict[str, object] = dict(
        model_ref=f"{FAMILIES_FILE}:build_cyclegan", out_dir=out, targets=(Target.INT8,),
        input_shapes=(SHAPE,), input_ranges=(MINUS_ONE_ONE,), input_names=("image",),
        output_range=MINUS_ONE_ONE, calib_samples=8, verify_samples=2)
    settings.update(overrides)
    return ExportConfig(**settings)  # type: ignore[arg-type]


def test_fake_quant_is_exact_until_rounding_and_strips_back():
    model = FAMILIES["cyclegan"].build()
    reference = copy.deepcopy(model)
    x = torch.rand(2, *SHAPE[1:]) * 2 - 1
    quantized = insert_fake_quant(model, (x[:1],), [(-1.0, 1.0)])
    assert any(isinstance(m, QuantInstanceNorm) for m in model.modules())
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)  # rounding starts off
        quantized.calibrate(iter([(x,)]))
        quantized.set_rounding(True)
        assert not torch.allclose(model(x), reference(x), atol=1e-3)
    plain = quantized.strip()
    assert not any(isinstance(m, QuantInstanceNorm) for m in plain.modules())
    assert plain.state_dict().keys() == reference.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(plain(x), reference(x))


def test_equalize_before_instance_norm_keeps_the_output():
    model = FAMILIES["johnson"].build()  # affine and plain InstanceNorms, a residual sum
    reference = copy.deepcopy(model)
    x = torch.rand(4, *SHAPE[1:]) * 2 - 1
    assert equalize_before_instance_norm(model, [(x[:2],), (x[2:],)]) == 4
    assert not torch.equal(model.down[0][1].weight, reference.down[0][1].weight)
    with torch.no_grad():
        want, got = reference(x), model(x)
    assert float(((got - want) ** 2).mean() / want.var()) < 1e-5  # > 50 dB SNR


def test_finetune_needs_tflite_int8_alone(tmp_path, capsys):
    for targets in ((Target.FP32,), (Target.INT8, Target.FP16)):
        with pytest.raises(UsageError, match="--finetune tunes the weights for tflite-int8"):
            _config(tmp_path, targets=targets, finetune_steps=5)
    with pytest.raises(UsageError, match="cannot be negative"):
        _config(tmp_path, finetune_steps=-1)
    with pytest.raises(UsageError, match="--finetune-device"):
        _config(tmp_path, finetune_steps=5, finetune_device="tpu")
    code = main(["export", f"{FAMILIES_FILE}:build_cyclegan", "--target", "tflite-fp32",
                 "--finetune", "5", "--out", str(tmp_path / "cli")])
    assert code == 2
    assert "tflite-fp32 would be the fine-tuned model" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


@pytest.mark.slow
def test_finetune_export_verifies_against_the_original_model(tmp_path):
    original = FAMILIES["cyclegan"].build()
    untouched = copy.deepcopy(original.state_dict())
    config = _config(tmp_path / "out", module=original, finetune_steps=30)
    result = run_export(config)
    metadata = json.loads(result.metadata_path.read_text())

    tuned = metadata["finetune"]
    assert tuned["steps"] == 30 and tuned["steps_run"] == 30 and not tuned["interrupted"]
    assert tuned["seconds"] > 0 and tuned["final_loss"] is not None
    assert tuned["validation_snr_db"]["before"] is not None
    assert tuned["validation_snr_db"]["after"] >= tuned["validation_snr_db"]["before"]
    assert tuned["train_samples"] + tuned["validation_samples"] == 8
    assert "original" in tuned["verified_against"] and tuned["equalized_convs"] > 0
    weights = result.out_dir / FINETUNED_FILE
    assert tuned["file"] == FINETUNED_FILE and weights.is_file()
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == tuned["sha256"]

    # the user's model is left as it was: same modules, same weights
    assert any(isinstance(m, nn.InstanceNorm2d) for m in original.modules())
    assert all(torch.equal(untouched[k], v) for k, v in original.state_dict().items())

    # the figures are those of the int8 file against the ORIGINAL model
    artifact = metadata["artifacts"][0]
    content = (result.out_dir / artifact["file"]).read_bytes()
    data = build_representative_data(INPUTS, (), 8, 2)
    figures, _, _ = verify(original, content, data.verification, INPUTS,
                           ("output",), MINUS_ONE_ONE)
    reported = artifact["verification"]["outputs"][0]
    assert reported["snr_db"] == pytest.approx(figures.outputs[0].snr_db, abs=1e-6)
    assert reported["psnr_db"] == pytest.approx(figures.outputs[0].psnr_db, abs=1e-6)

    student = FAMILIES["cyclegan"].build()
    student.load_state_dict(torch.load(weights, weights_only=True))  # the factory's own keys
    if tuned["best_step"] > 0:  # the student moved: against it the figures differ
        assert any(not torch.equal(untouched[k], v) for k, v in student.state_dict().items())
        against_student, _, _ = verify(student, content, data.verification,
                                       INPUTS, ("output",), MINUS_ONE_ONE)
        assert against_student.outputs[0].snr_db != pytest.approx(reported["snr_db"],
                                                                 abs=1e-6)


@pytest.fixture
def moving_finetune(monkeypatch):
    """A fine-tuning whose weights moved (a random-init net gains too little in 20 steps for
    MIN_GAIN_DB, so the student's first conv is nudged by 2 %): the real-file comparison
    then runs on two different int8 files."""
    from dataclasses import replace

    from mobilize.exporter import pipeline

    real_stage = pipeline.finetune_stage

    def moved(*args, **kwargs):
        tuned = real_stage(*args, **kwargs)
        if tuned is None:  # the post-training export the comparison runs
            return None
        conv = next(m for m in tuned.module.modules() if isinstance(m, nn.Conv2d))
        with torch.no_grad():
            conv.weight.mul_(1.02)
        report = replace(tuned.report, best_step=max(1, tuned.report.best_step))
        return replace(tuned, report=report)

    monkeypatch.setattr(pipeline, "finetune_stage", moved)


def test_finetune_is_compared_with_post_training_in_the_real_files(tmp_path, moving_finetune):
    result = run_export(_config(tmp_path / "out", finetune_steps=20))
    tuned = json.loads(result.metadata_path.read_text())["finetune"]
    check = tuned["real_file_check"]
    assert tuned["best_step"] > 0 and check["samples"] == tuned["validation_samples"]
    # the fine-tuned file must lead by the margin, on photos it was not trained on
    assert check["margin_db"] == 0.5
    finetuned_wins = (check["finetuned_int8_snr_db"]
                      >= check["post_training_int8_snr_db"] + check["margin_db"])
    assert check["kept"] == ("finetuned" if finetuned_wins else "post_training")
    assert (result.out_dir / FINETUNED_FILE).is_file() == finetuned_wins


def test_post_training_int8_is_written_when_it_beats_the_finetuned_file(tmp_path, monkeypatch,
                                                                        moving_finetune):
    from mobilize.exporter import finetune_check

    monkeypatch.setattr(finetune_check.RealFileCheck, "keeps_finetuned",
                        property(lambda self: False))
    out = tmp_path / "out"
    out.mkdir()
    (out / FINETUNED_FILE).write_bytes(b"from an earlier export")  # which listed it:
    (out / "metadata.json").write_text(json.dumps({"finetune": {"file": FINETUNED_FILE}}))
    result = run_export(_config(out, finetune_steps=20))
    metadata = json.loads(result.metadata_path.read_text())
    assert not (out / FINETUNED_FILE).exists()  # stale, and this export kept no weights
    assert metadata["finetune"]["file"] is None
    assert metadata["finetune"]["real_file_check"]["kept"] == "post_training"
    [told] = [w for w in metadata["warnings"] if w.startswith("--finetune 20:")]
    assert "the post-training file is written and finetuned.pt is not" in told
    # the file is the post-training export of the user's own weights, verified as usual
    plain = run_export(_config(tmp_path / "plain"))
    written = metadata["artifacts"][0]
    expected = json.loads(plain.metadata_path.read_text())["artifacts"][0]
    # (two conversions of one graph differ in a few bytes of the flatbuffer, not in figures)
    assert abs(written["size_bytes"] - expected["size_bytes"]) <= 64
    assert (out / written["file"]).is_file() and result.out_dir == out
    assert written["verification"]["outputs"][0]["snr_db"] == pytest.approx(
        expected["verification"]["outputs"][0]["snr_db"], abs=1e-6)


def test_both_files_verification_figures_are_reported_and_a_loss_there_warned(
        tmp_path, monkeypatch, moving_finetune):
    from mobilize.exporter import finetune_check

    monkeypatch.setattr(finetune_check.RealFileCheck, "keeps_finetuned",
                        property(lambda self: True))
    result = run_export(_config(tmp_path / "out", finetune_steps=20))
    metadata = json.loads(result.metadata_path.read_text())
    verified = metadata["finetune"]["real_file_check"]["verification_snr_db"]
    # the fine-tuned figure is the written file's own verification (worst output's SNR)
    written = metadata["artifacts"][0]["verification"]["outputs"][0]["snr_db"]
    assert verified["finetuned"] == pytest.approx(written, abs=0.01)
    plain = run_export(_config(tmp_path / "plain"))
    expected = json.loads(plain.metadata_path.read_text())["artifacts"][0]
    assert verified["post_training"] == pytest.approx(
        expected["verification"]["outputs"][0]["snr_db"], abs=0.01)
    told = [w for w in metadata["warnings"] if "on the verification photos" in w]
    if verified["finetuned"] < verified["post_training"]:
        [message] = told
        keeps, post = map(float, re.search(r"it keeps ([\d.-]+) dB and post-training int8 "
                                           r"of your weights ([\d.-]+) dB", message).groups())
        assert keeps == pytest.approx(verified["finetuned"], abs=0.06)
        assert post == pytest.approx(verified["post_training"], abs=0.06)
        assert "--calib-dir" in message
    else:
        assert told == []
