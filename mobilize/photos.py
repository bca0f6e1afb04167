"""The one split of the photographs that ship inside scikit-image (no download).

The zoo in models/ trains on TRAIN_PHOTOS and is judged on HELD_OUT_PHOTOS; the exporter
calibrates on CALIBRATION_PHOTOS (training photos) and verifies on the same HELD_OUT_PHOTOS.
So no figure anywhere — model card, export table, quality gate — is measured on a photo that
weights or int8 ranges were fitted to. `chelsea` and `cat` are the same picture, so only
`chelsea` is used, and it is held out.
"""

from __future__ import annotations

TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
    "stereo_motorcycle", "colorwheel", "camera", "brick", "grass", "moon", "clock",
)
HELD_OUT_PHOTOS: tuple[str, ...] = ("chelsea", "rocket", "gravel", "coins")
# The colour photographs among the training ones: what the exporter calibrates with when the
# user gives no --calib-dir.
CALIBRATION_PHOTOS: tuple[str, ...] = (
    "astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
    "stereo_motorcycle",
)

assert not set(HELD_OUT_PHOTOS) & set(TRAIN_PHOTOS)
assert set(CALIBRATION_PHOTOS) <= set(TRAIN_PHOTOS)
