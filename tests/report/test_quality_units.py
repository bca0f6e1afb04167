"""The quality gate's host side: quantized I/O, figures, the threshold, reference errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mobilize.bench.quality import QualityError, enforce_min_psnr
from mobilize.bench.quality_images import heatmap
from mobilize.bench.quality_reference import evaluate, model_formats, prepare_reference
from mobilize.contract.tflite_runner import Layout, TensorFormat
from mobilize.device.errors import ModelError


def test_int8_input_is_quantized_in_the_models_layout_and_output_dequantized() -> None:
    fmt = TensorFormat((1, 4, 4, 3), np.dtype(np.int8), 1 / 255, -128, Layout.NHWC)
    nchw = np.linspace(0, 1, 48, dtype=np.float32).reshape(1, 3, 4, 4)
    encoded = fmt.encode(nchw)
    assert encoded.dtype == np.int8 and encoded.shape == (1, 4, 4, 3)
    assert encoded.min() == -128 and encoded.max() == 127
    decoded = fmt.decode(encoded)
    assert decoded.shape == (1, 3, 4, 4)
    assert np.max(np.abs(decoded - nchw)) <= 0.5 / 255 + 1e-6


def test_out_of_range_values_saturate_instead_of_wrapping() -> None:
    fmt = TensorFormat((1, 2), np.dtype(np.uint8), 0.1, 0, Layout.NCHW)
    assert fmt.encode(np.array([[-5.0, 99.0]], dtype=np.float32)).tolist() == [[0, 255]]


@pytest.mark.slow
def test_reference_and_formats_of_a_real_export(tiny_export: Path) -> None:
    reference = prepare_reference(tiny_export, count=2)
    assert reference.inputs.shape == (2, 3, 32, 32)
    assert reference.reference.shape == (2, 3, 32, 32)
    assert "chelsea" in reference.source  # the exporter's own held-out photographs
    input_format, output_format = model_formats(tiny_export / "model_int8.tflite", reference)
    assert input_format.dtype == np.int8 and input_format.scale is not None
    assert input_format.layout is Layout.NHWC and output_format.shape == (1, 32, 32, 3)
    exact = evaluate(reference, reference.reference.copy())
    assert exact.images[0].psnr_db is None and exact.max_abs_error == 0.0
    noisy = evaluate(reference, reference.reference + 0.01)
    assert noisy.worst_psnr_db == pytest.approx(40.0, abs=0.01)  # data range 1, error 0.01


@pytest.mark.slow
def test_quality_images_folder_feeds_the_reference(tiny_export: Path, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        pixels = np.full((40, 40, 3), 60 * (index + 1), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
    reference = prepare_reference(tiny_export, folder, count=2)
    assert reference.count == 2
    assert reference.inputs[1].mean() == pytest.approx(120 / 255, abs=1e-3)


def test_a_bare_tflite_has_no_reference(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    with pytest.raises(ModelError, match="needs the PyTorch model") as raised:
        prepare_reference(model)
    assert "mobilize export" in (raised.value.hint or "")


@pytest.mark.slow
def test_an_unloadable_source_model_says_where_it_looked(tiny_export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "moved"
    shutil.copytree(tiny_export, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["source_model"]["ref"] = "missing_model.py:build"
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match="cannot rebuild the PyTorch reference 'missing_model.py"):
        prepare_reference(copy)


def _record(psnr: float | None) -> dict:
    return {
        "model_name": "export:tflite-int8",
        "result": {"config": {"delegate": "gpu"}},
        "harness": {"quality": {"worst_psnr_db": psnr}},
    }


def test_min_psnr_names_each_run_below_it() -> None:
    enforce_min_psnr([_record(41.0), _record(None)], 40.0)  # None: identical output
    with pytest.raises(QualityError) as raised:
        enforce_min_psnr([_record(41.0), _record(28.25)], 40.0)
    assert "export:tflite-int8 on gpu: worst PSNR 28.2 dB < 40 dB" in raised.value.message
    assert raised.value.exit_code == 6


def test_heatmap_is_dark_for_no_difference_and_hot_for_a_large_one() -> None:
    ramp = heatmap(np.array([[[0.0, 1.0]], [[0.0, 0.2]], [[0.0, 0.0]]]))
    assert ramp[:, 0, 0].tolist() == [0.0, 0.0, 0.0]
    assert ramp[:, 0, 1].tolist() == [1.0, 1.0, 1.0]
