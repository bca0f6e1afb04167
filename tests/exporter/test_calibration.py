"""Representative data: folders of photos, arrays, several inputs, and clear complaints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.errors import UsageError
from mobilize.exporter.calibration import (
    CALIBRATION_PHOTOS,
    HELD_OUT_PHOTOS,
    build_representative_data,
    from_range,
    photo,
)
from mobilize.exporter.config import CalibSource

SPEC = InputSpec("image", (1, 3, 32, 48), ValueRange(-1.0, 1.0))


def _write_photos(folder: Path, count: int, size: tuple[int, int] = (60, 90)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        array = (rng.uniform(0, 1, (*size, 3)) * 255).astype(np.uint8)
        suffix = "png" if i % 2 else "jpg"
        Image.fromarray(array).save(folder / f"p{i:02d}.{suffix}")


def test_default_photos_are_real_and_held_out_ones_differ():
    assert not set(CALIBRATION_PHOTOS) & set(HELD_OUT_PHOTOS)
    data = build_representative_data([SPEC], [], calib_samples=10, verify_samples=3)
    calib = data.calibration.arrays["image"]
    held_out = data.verification.arrays["image"]
    assert calib.shape == (10, 3, 32, 48) and held_out.shape == (3, 3, 32, 48)
    assert calib.min() >= -1.0 and calib.max() <= 1.0 and calib.std() > 0.2
    for sample in held_out:  # no verification sample is a calibration sample
        assert np.abs(calib - sample).reshape(10, -1).max(axis=1).min() > 0.1
    assert data.calibration.count == 10 and "astronaut" in data.calibration.source


def test_folder_images_are_cropped_resized_and_ranged(tmp_path):
    _write_photos(tmp_path / "photos", 12)
    spec = InputSpec("image", (1, 3, 32, 32), ValueRange(0.0, 255.0))
    data = build_representative_data([spec], [CalibSource(None, tmp_path / "photos")],
                                     calib_samples=8, verify_samples=4)
    calib = data.calibration.arrays["image"]
    assert calib.shape == (8, 3, 32, 32)
    assert 0 <= calib.min() and calib.max() <= 255 and calib.max() > 200
    # 12 images: 8 calibrate, the other 4 verify
    assert data.verification.count == 4
    assert "not used for calibration" in data.verification.source


def test_mean_std_range_round_trips():
    value_range = ValueRange.parse("mean=0.485,0.456,0.406:std=0.229,0.224,0.225")
    spec = InputSpec("image", (1, 3, 16, 16), value_range)
    data = build_representative_data([spec], [], calib_samples=2, verify_samples=1)
    unit = from_range(data.calibration.arrays["image"], value_range)
    assert -1e-5 <= unit.min() and unit.max() <= 1 + 1e-5


def test_grayscale_input_gets_one_channel():
    spec = InputSpec("image", (1, 1, 16, 16), ValueRange(0.0, 1.0))
    data = build_representative_data([spec], [], calib_samples=3, verify_samples=1)
    assert data.calibration.arrays["image"].shape == (3, 1, 16, 16)


def test_too_few_samples_warns(tmp_path):
    _write_photos(tmp_path / "few", 3)
    data = build_representative_data([SPEC], [CalibSource(None, tmp_path / "few")],
                                     calib_samples=32, verify_samples=2)
    assert data.calibration.count == 3
    text = " ".join(data.calibration.warnings)
    assert "only 3 calibration samples (asked for 32)" in text
    assert "is few" in text
    assert data.verification.count == 2  # held-out photographs instead


def test_npy_with_wrong_shape_is_a_usage_error(tmp_path):
    path = tmp_path / "samples.npy"
    np.save(path, np.zeros((4, 32, 48, 3), dtype=np.float32))
    with pytest.raises(UsageError, match=r"needs \(3, 32, 48\) \(it looks NHWC"):
        build_representative_data([SPEC], [CalibSource(None, path)], 4, 1)


def test_npy_far_outside_the_declared_range_is_an_error(tmp_path):
    path = tmp_path / "samples.npy"
    np.save(path, np.random.default_rng(0).uniform(0, 255, (6, 3, 32, 48)).astype(np.float32))
    with pytest.raises(UsageError, match="far outside input 'image'.s declared range -1,1") as e:
        build_representative_data([SPEC], [CalibSource(None, path)], 4, 1)
    assert "--range" in e.value.hint


def test_npz_slightly_outside_or_narrow_range_warns(tmp_path):
    path = tmp_path / "samples.npz"
    rng = np.random.default_rng(0)
    np.savez(path, image=rng.uniform(-1.2, 1.2, (8, 3, 32, 48)).astype(np.float32))
    data = build_representative_data([SPEC], [CalibSource(None, path)], 4, 2)
    assert any("outside the declared range" in w for w in data.calibration.warnings)
    assert data.verification.count == 2
    np.savez(path, image=rng.uniform(0, 0.1, (8, 3, 32, 48)).astype(np.float32))
    data = build_representative_data([SPEC], [CalibSource(None, path)], 4, 2)
    assert any("is the range right" in w for w in data.calibration.warnings)


def test_one_source_per_input_for_two_input_models(tmp_path):
    _write_photos(tmp_path / "content", 5)
    _write_photos(tmp_path / "style", 5, size=(40, 40))
    specs = [InputSpec("content", (1, 3, 16, 16), ValueRange(0, 1)),
             InputSpec("style", (1, 3, 16, 16), ValueRange(0, 1))]
    sources = [CalibSource.parse(f"content={tmp_path / 'content'}"),
               CalibSource.parse(f"style={tmp_path / 'style'}")]
    data = build_representative_data(specs, sources, calib_samples=5, verify_samples=2)
    assert set(data.calibration.arrays) == {"content", "style"}
    assert not np.allclose(data.calibration.arrays["content"], data.calibration.arrays["style"])
    with pytest.raises(UsageError, match="say which source feeds which") as e:
        build_representative_data(specs, [CalibSource(None, tmp_path / "content")], 5, 2)
    assert "--calib-dir content=FOLDER --calib-dir style=FOLDER" in e.value.hint
    with pytest.raises(UsageError, match="names input 'mask'"):
        build_representative_data(specs, [CalibSource("mask", tmp_path / "content")], 5, 2)


def test_default_photos_give_two_inputs_different_crops():
    specs = [InputSpec("content", (1, 3, 16, 16), ValueRange(0, 1)),
             InputSpec("style", (1, 3, 16, 16), ValueRange(0, 1))]
    data = build_representative_data(specs, [], calib_samples=4, verify_samples=2)
    assert not np.allclose(data.calibration.arrays["content"], data.calibration.arrays["style"])


def test_missing_source_and_empty_folder(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        build_representative_data([SPEC], [CalibSource(None, tmp_path / "nope")], 4, 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no png/jpg image"):
        build_representative_data([SPEC], [CalibSource(None, tmp_path / "empty")], 4, 1)


def test_non_image_input_needs_arrays():
    spec = InputSpec("noise", (1, 16), ValueRange(-1, 1))
    with pytest.raises(UsageError, match="is not an image"):
        build_representative_data([spec], [], 4, 1)


def test_calib_source_parse():
    assert CalibSource.parse("photos/") == CalibSource(None, Path("photos/"))
    assert CalibSource.parse("style=styles/") == CalibSource("style", Path("styles/"))


def test_photo_is_rgb_float():
    image = photo("camera")  # grayscale in skimage: made RGB
    assert image.shape[2] == 3 and image.dtype == np.float32 and image.max() <= 1
