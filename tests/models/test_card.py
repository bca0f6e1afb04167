"""The model card's int8 column: the exported .tflite scored like the PyTorch fp32 model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from exporter.config import ExportConfig, Layout, Target
from exporter.pipeline import run_export
from models import card, metrics
from tests.models.conftest import TEST_SIZE, model_module


@pytest.mark.slow
def test_exported_int8_adain_scores_close_to_fp32_on_heldout_photos(tmp_path: Path) -> None:
    # AdaIN: two inputs, so a swapped content/style feed would show as a large quality drop.
    module = model_module("adain")
    model = module.build(pretrained=True).eval()
    specs = tuple(replace(spec, shape=(1, 3, TEST_SIZE, TEST_SIZE)) for spec in module.INPUTS)
    result = run_export(ExportConfig(model_ref="models.adain:build", out_dir=tmp_path,
                                     targets=(Target.INT8,),
                                     input_shapes=tuple(s.shape for s in specs)))
    content = (result.out_dir / (result.targets[0].file or "")).read_bytes()

    tflite = card.TfliteModel(content, specs, (1, 3, TEST_SIZE, TEST_SIZE))
    assert tflite.output_layout is Layout.NHWC
    assert set(tflite.input_layouts.values()) == {Layout.NHWC}
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
