"""A tiny image-to-image generator for the sweep and report tests (32x32 by default).

A sepia tone plus a small learned-looking residual, so that the report's image strips show
a picture a person recognizes, and int8's rounding shows in the difference heatmap.
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange

INPUTS = (InputSpec("image", (1, 3, 32, 32), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(0.0, 1.0)

SEPIA = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))


class TinyToner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.tone = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.tone.weight.copy_(torch.tensor(SEPIA).reshape(3, 3, 1, 1))
        self.residual = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh()
        )
        self.clip = nn.Hardtanh(0.0, 1.0)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.clip(self.tone(image) + 0.15 * self.residual(image))


def build() -> nn.Module:
    return TinyToner().eval()
