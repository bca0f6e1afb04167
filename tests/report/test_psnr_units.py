"""Two PSNRs, one definition each: the worst single image (what every --min-psnr gates on)
and the error pooled over all images, the same numbers on the export side and the phone side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobilize.bench.quality_reference import pooled_psnr
from mobilize.contract.reference import image_figures
from mobilize.contract.specs import ValueRange
from mobilize.exporter.verify import compare

UNIT = ValueRange(0.0, 1.0)


def two_images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 1, (2, 3, 16, 16)).astype(np.float32)
    converted = reference.copy()
    converted[0] += rng.normal(0, 0.002, converted[0].shape).astype(np.float32)  # ~54 dB
    converted[1] += rng.normal(0, 0.02, converted[1].shape).astype(np.float32)  # ~34 dB
    return reference, converted


def test_the_worst_image_is_below_the_pooled_figure() -> None:
    reference, converted = two_images()
    figures = compare("output", reference, converted, UNIT)
    assert len(figures.image_psnr_db) == 2
    assert figures.worst_image_psnr_db == min(figures.image_psnr_db)
    assert figures.worst_image_psnr_db < figures.psnr_db - 2  # one bad image, hidden when pooled
    assert figures.to_json()["worst_image_psnr_db"] == figures.worst_image_psnr_db


def test_export_and_phone_compute_each_image_alike() -> None:
    reference, converted = two_images()
    exported = compare("output", reference, converted, UNIT)
    on_phone = [image_figures(reference[i:i + 1], converted[i:i + 1], UNIT).psnr_db
                for i in range(2)]
    assert on_phone == pytest.approx(list(exported.image_psnr_db), abs=1e-9)
    # the phone side pools its per-image figures to the export's pooled PSNR
    assert pooled_psnr(on_phone) == pytest.approx(exported.psnr_db, abs=1e-6)


def test_identical_images_pool_to_infinity_and_count_as_no_error() -> None:
    assert pooled_psnr([None, None]) == math.inf
    assert pooled_psnr([None, 40.0]) == pytest.approx(40.0 + 10 * math.log10(2))
    assert math.isnan(pooled_psnr([]))
