"""The model card's int8 column: the exported .tflite scored like the PyTorch fp32 model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mobilize.exporter.config import ExportConfig, Layout, Target
from mobilize.exporter.pipeline import run_export
from mobilize.models import card, metrics
from tests.models.conftest import TEST_SIZE, model_module


@pytest.mark.slow
def test_exported_int8_adain_scores_close_to_fp32_on_heldout_photos(tmp_path: Path) -> None:
    # AdaIN: two inputs, so a swapped content/style feed would show as a large quality drop.
    module = model_module("adain")
    model = module.build(pretrained=True).eval()
    specs = tuple(replace(spec, shape=(1, 3, TEST_SIZE, TEST_SIZE)) for spec in module.INPUTS)
    result = run_export(ExportConfig(model_ref="mobilize.models.adain:build", out_dir=tmp_path,
                                     targets=(Target.INT8,),
                                     input_shapes=tuple(s.shape for s in specs)))
    content = (result.out_dir / (result.targets[0].file or "")).read_bytes()

    tflite = card.TfliteModel(content, specs, (1, 3, TEST_SIZE, TEST_SIZE))
    assert set(tflite.runner.output_layouts.values()) == {Layout.NHWC}
    assert set(tflite.runner.input_layouts.values()) == {Layout.NHWC}
    output = tflite(*(torch.rand(s.shape) for s in specs))
    assert output.shape == (1, 3, TEST_SIZE, TEST_SIZE) and output.dtype == torch.float32

    fp32 = metrics.heldout_quality(model, module.TASK, -1.0, size=TEST_SIZE)
    int8 = metrics.heldout_quality(tflite, module.TASK, -1.0, size=TEST_SIZE)
    assert abs(int8.psnr - fp32.psnr) < 1.5, (int8, fp32)
    assert int8.ssim > fp32.ssim - 0.05, (int8, fp32)


def test_failed_export_shows_its_reason_in_the_card_cells() -> None:
    cells = card._int8_cells(card.Int8Figures(None, None, "op SQRT | not quantizable"))
    assert cells.startswith("export failed: op SQRT / not quantizable")
    assert card._int8_cells(card.Int8Figures(
        26_624, metrics.Quality(psnr=24.5, ssim=0.81234))) == "24.50 / 0.812 | 26 KB"


def _row(name: str, psnr: float, int8_psnr: float | None, **record: object) -> card.CardRow:
    int8 = None if int8_psnr is None else card.Int8Figures(
        30_000, metrics.Quality(psnr=int8_psnr, ssim=0.75))
    return card.CardRow(name=name, task="cartoon", parameters=8_459, size_bytes=58_000,
                        macs=148_000_000, quality=metrics.Quality(psnr=psnr, ssim=0.8),
                        baseline=metrics.Quality(psnr=15.5, ssim=0.5), sha256="ab" * 32,
                        record=dict(record), int8=int8)


def test_card_shows_qat_beside_the_trained_model_and_int8_for_ablations() -> None:
    base = _row("tiny_style", 24.80, 24.77, steps=3000, device="cuda")
    control = {"heldout_psnr": 25.99, "heldout_ssim": 0.8288, "int8_psnr": 25.94,
               "int8_ssim": 0.8181}
    tuned = _row("tiny_style_qat", 24.70, 24.85, steps=1000, seconds=151.2, device="cpu",
                 control=control)
    pruned = _row("fast_style_pruned", 24.40, 24.10)
    unfinetuned = _row("fast_style_pruned", 18.69, None)
    text = card.render([base], [("no fine-tuning", unfinetuned), ("pruned", pruned)],
                       [card.QatPair(base, tuned)])
    assert ("| tiny_style | 24.80 / 0.800 | 24.77 / 0.750 | 0.03 | 25.99 / 0.829 | "
            "25.94 / 0.818 | 0.05 | 24.70 / 0.800 | 24.85 / 0.750 | -0.15 | "
            "1000 steps, 151.2 s, cpu |") in text
    assert f"| weights/tiny_style_qat.pt | `{'ab' * 32}` |" in text
    assert "| pruned | 8,459 | 57 KB | 148 M | 24.40 / 0.800 | 24.10 / 0.750 |" in text
    assert "| no fine-tuning | 8,459 | 57 KB | 148 M | 18.69 / 0.800 | - |" in text
    failed = card.Int8Figures(None, None, "a | b")
    assert card._int8_quality_cell(failed) == "export failed: a / b"
