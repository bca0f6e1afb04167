"""How the unseen suite's --train-steps trains a family: on what crops, at what size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import benchmarks.finetune_int8 as finetune_bench
from tests.exporter.unseen_families import FAMILIES


def test_super_resolution_batches_are_the_downscaled_crop_and_the_crop():
    from mobilize.models import data

    pairs = [pair for pair in data.training_pyramid() if min(pair.photo.shape[:2]) >= 96]
    rng = np.random.default_rng(0)
    (small,), target = finetune_bench._super_resolution_batch(pairs, rng, 2, 32, 3)
    assert small.shape == (2, 3, 32, 32) and target.shape == (2, 3, 96, 96)
    # the input is the target's bicubic downscale, not another crop: its block means agree
    block_means = target.reshape(2, 3, 32, 3, 32, 3).mean(axis=(3, 5))
    assert np.abs(small - block_means).mean() < 0.03


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size", "trained_at"), [
    ("espcn", 128, 64),  # fully convolutional: trained on 64x64 crops, run at 128
    ("pix2pix_unet", 256, 256),  # a UNet-256 has 8 downsamplings: trained at its own size
])
def test_trained_module_moves_the_weights_at_the_size_the_build_allows(
        tmp_path, monkeypatch, name, size, trained_at):
    monkeypatch.setattr(finetune_bench, "CACHE", tmp_path)
    seeded = FAMILIES[name].build(size).state_dict()
    trained = finetune_bench.trained_module(name, size, steps=2).state_dict()
    assert [path.name for path in tmp_path.iterdir()] == [f"{name}_{trained_at}_trained2.pt"]
    moved = [key for key, value in seeded.items()
             if value.is_floating_point() and not torch.equal(value, trained[key])]
    assert len(moved) >= len([k for k in seeded if k.endswith("weight")]) // 2
