"""A tiny image-to-image generator for the sweep and report tests (32x32, three convs)."""

from __future__ import annotations

import torch
from torch import nn

from exporter.specs import InputSpec, ValueRange

INPUTS = (InputSpec("image", (1, 3, 32, 32), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(0.0, 1.0)


def build() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3, 3, padding=1),
        nn.Sigmoid(),
    )
    return model.eval()
