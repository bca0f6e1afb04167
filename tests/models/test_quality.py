"""Trained weights do what they were trained for, on photos they never saw."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mobilize.models import data, metrics, stylize
from tests.models.conftest import model_module


def test_espcn_beats_bicubic_on_heldout_photos() -> None:
    model = model_module("espcn").build(pretrained=True)
    trained = metrics.heldout_quality(model, "super_resolution_x3", 0.0)
    bicubic = metrics.baseline_quality("super_resolution_x3")
    assert trained.psnr > bicubic.psnr + 0.1


def test_trained_style_nets_are_closer_to_the_cartoon_than_untrained() -> None:
    for name in ("fast_style", "style_student", "tiny_style"):
        module = model_module(name)
        trained = metrics.heldout_quality(module.build(True), "cartoon", -1.0, size=128)
        untrained = metrics.heldout_quality(module.build(False), "cartoon", -1.0, size=128)
        assert trained.psnr > untrained.psnr + 5.0, name
        assert trained.psnr > 20.0, name


def test_unet_and_adain_beat_doing_nothing() -> None:
    unet = metrics.heldout_quality(model_module("unet").build(True), "sketch", -1.0, size=128)
    assert unet.psnr > metrics.baseline_quality("sketch", size=128).psnr + 10.0
    adain = metrics.heldout_quality(model_module("adain").build(True), "color_transfer", -1.0,
                                    size=128)
    assert adain.psnr > metrics.baseline_quality("color_transfer", size=128).psnr + 5.0


def test_training_and_heldout_photos_are_disjoint() -> None:
    assert not set(data.TRAIN_PHOTOS) & set(data.HELDOUT_PHOTOS)
    assert "cat" not in data.TRAIN_PHOTOS  # skimage's cat is chelsea, which is held out
    held = data.heldout_images(64)
    train = data.calibration_images(64)
    for image in held:
        assert image.shape == (64, 64, 3) and image.dtype == np.float32
        assert all(np.abs(image - other).mean() > 0.02 for other in train)


def test_cartoon_is_a_visible_style_not_an_identity() -> None:
    photo = data.heldout_images(128)[0]
    styled = stylize.cartoon(photo)
    assert styled.shape == photo.shape and 0.0 <= styled.min() and styled.max() <= 1.0
    assert np.abs(styled - photo).mean() > 0.05


def test_color_transfer_takes_the_style_mean() -> None:
    content, style = data.heldout_images(64)[:2]
    out = stylize.color_transfer(content, style)
    ycc = lambda image: image @ stylize.RGB_TO_YCBCR.T  # noqa: E731
    assert np.allclose(ycc(out).mean((0, 1)), ycc(style).mean((0, 1)), atol=0.03)
    assert not np.allclose(ycc(content).mean((0, 1)), ycc(style).mean((0, 1)), atol=0.03)


def test_macs_are_counted_per_layer_kind() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ConvTranspose2d(8, 4, 2, 2),
                          nn.Flatten(), nn.Linear(4 * 20 * 20, 5))
    # conv: 8*10*10 outputs * 3*3*3; transpose: 8*10*10 inputs * 4*2*2; linear: 1600*5
    assert metrics.count_macs(model, torch.rand(1, 3, 10, 10)) == 21_600 + 12_800 + 8_000
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert metrics.count_macs(depthwise, torch.rand(1, 8, 4, 4)) == 8 * 16 * 9
