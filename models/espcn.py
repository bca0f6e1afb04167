"""ESPCN x3 super-resolution (Shi et al. 2016): two feature convs, a conv to 3*9 channels,
PixelShuffle(3). Trained on bicubic-downscaled crops of the training photos.

Input: the low-resolution RGB in [0, 1], 1x3x86x86 (-> 258x258 output; any size works).
Output: RGB in [0, 1], clipped (a parameter-free Hardtanh, added after training: on noisy
inputs the sharpening overshoots, and a photo's values never leave [0, 1]).
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.models.weights import load_pretrained

NAME = "espcn"
SCALE = 3
INPUTS = (InputSpec("low_res", (1, 3, 86, 86), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(0.0, 1.0)
TASK = "super_resolution_x3"


class ESPCN(nn.Module):
    def __init__(self, scale: int = SCALE) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 64, 5, padding=2), nn.Tanh(),
            nn.Conv2d(64, 32, 3, padding=1), nn.Tanh(),
            nn.Conv2d(32, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale),
            nn.Hardtanh(0.0, 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def build(pretrained: bool = True) -> nn.Module:
    model = ESPCN()
    return load_pretrained(NAME, model) if pretrained else model.eval()
