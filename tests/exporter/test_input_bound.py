"""The input cap: PyTorch fp32 on inputs rounded to a file's integer input grid. It tells a
user whether int8 loses the picture inside the model or already at its input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mobilize.exporter.calibration import HELD_OUT_PHOTOS, center_crop_resize, photo, to_input
from mobilize.exporter.config import IoType, Target
from mobilize.exporter.inspect_tflite import InputQuantization, input_quantization
from mobilize.exporter.pipeline import run_export
from mobilize.exporter.verify import compare
from tests.exporter.conftest import TEST_SIZE, family_config
from tests.exporter.families import FAMILIES

pytestmark = pytest.mark.slow


def _artifact(metadata: dict, target: Target) -> dict:
    return next(a for a in metadata["artifacts"] if a["target"] == target.value)


def test_round_trip_lands_on_the_grid_and_clips_to_the_type():
    grid = InputQuantization(scale=0.5, zero_point=-2, dtype="int8")
    values = np.array([0.1, 0.26, -1.0, 1e6, -1e6], np.float32)
    np.testing.assert_allclose(grid.round_trip(values), [0.0, 0.5, -1.0, 64.5, -63.0])


def test_float_files_have_no_cap_and_integer_files_name_theirs(family_export):
    result = family_export("johnson")
    metadata = json.loads(result.metadata_path.read_text())
    for target in (Target.FP32, Target.FP16, Target.DYNAMIC):
        assert "input_bound" not in _artifact(metadata, target)["verification"]
    int8 = _artifact(metadata, Target.INT8)
    cap = int8["verification"]["input_bound"]["outputs"][0]
    assert "integer input grid" in int8["verification"]["input_bound"]["note"]
    # the cap bounds the file: rounding the input alone loses less than the whole int8 file
    assert cap["psnr_db"] > int8["verification"]["outputs"][0]["psnr_db"]
    int16 = _artifact(metadata, Target.INT16X8)["verification"]["input_bound"]["outputs"][0]
    assert int16["psnr_db"] > cap["psnr_db"] + 20  # 16-bit steps are 256 times finer


def test_cap_is_pytorch_on_the_files_own_input_grid(family_export):
    # Recomputed by hand from the file's input tensor: the same figure as metadata.json.
    result = family_export("cyclegan")
    metadata = json.loads(result.metadata_path.read_text())
    content = (result.out_dir / "model_int8.tflite").read_bytes()
    grid = input_quantization(content)["image"]
    tensor = _artifact(metadata, Target.INT8)["inputs"][0]
    assert (grid.scale, grid.zero_point) == (tensor["scale"], tensor["zero_point"])
    family = FAMILIES["cyclegan"]
    spec = family.inputs(TEST_SIZE)[0]
    batch = to_input([center_crop_resize(photo(name), TEST_SIZE, TEST_SIZE)
                      for name in HELD_OUT_PHOTOS[:3]], spec)
    net = family.build()
    with torch.no_grad():
        reference = net(torch.from_numpy(batch)).numpy()
        rounded = net(torch.from_numpy(grid.round_trip(batch))).numpy()
    expected = compare("output", reference, rounded, family.value_range)
    recorded = _artifact(metadata, Target.INT8)["verification"]["input_bound"]["outputs"][0]
    assert recorded["psnr_db"] == pytest.approx(expected.psnr_db, abs=0.05)


def test_float_io_int8_file_is_capped_by_its_first_quantize(tmp_path):
    config = family_config("espcn", tmp_path / "out", targets=(Target.INT8,), io=IoType.FLOAT)
    result = run_export(config)
    content = (result.out_dir / "model_int8.tflite").read_bytes()
    grid = input_quantization(content)["image"]
    assert (grid.low, grid.high) == (-128, 127) and 0 < grid.scale < 0.01
    metadata = json.loads(result.metadata_path.read_text())
    assert _artifact(metadata, Target.INT8)["inputs"][0]["dtype"] == "float32"
    cap = _artifact(metadata, Target.INT8)["verification"]["input_bound"]["outputs"][0]
    assert 30 < cap["psnr_db"] < 90


def test_quality_gate_names_targets_their_own_input_already_fails(family_export, tmp_path):
    from dataclasses import replace

    from mobilize.errors import QualityGateError
    from mobilize.exporter.pipeline import check_outcome

    result = family_export("johnson")
    metadata = json.loads(result.metadata_path.read_text())
    int8 = _artifact(metadata, Target.INT8)["verification"]
    cap = int8["input_bound"]["outputs"][0]["psnr_db"]
    int16_cap = _artifact(metadata, Target.INT16X8)["verification"]["input_bound"]
    gate = cap + 1  # above int8's cap, far below int16x8's
    assert int16_cap["outputs"][0]["psnr_db"] > gate
    config = replace(family_config("johnson", tmp_path), min_psnr=gate)
    with pytest.raises(QualityGateError) as raised:
        check_outcome(config, result)
    message = raised.value.message
    assert "tflite-int8" in message and "even PyTorch, fed the input rounded" in message
    named = message.split("(", 1)[1].split(":", 1)[0]
    assert named == "tflite-int8"  # int16x8's cap passes the gate, so it is not named
