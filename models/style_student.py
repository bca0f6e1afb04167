"""The compressed student of fast_style, trained by distillation to the `cartoon` stylization.

Depthwise separable convolutions, channels 16/32/48 (the teacher: full convs, 16/32/64),
three residual blocks, BatchNorm instead of InstanceNorm: at inference BatchNorm is a fixed
per-channel affine that folds into the preceding convolution, and no per-image statistics
are left for int8 to lose. Input: RGB in [0, 1]; output: RGB in [-1, 1] (tanh).
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.models.layers import ConvNormAct, Residual, SeparableConv, UpConv
from mobilize.models.weights import load_pretrained

NAME = "style_student"
INPUTS = (InputSpec("image", (1, 3, 256, 256), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(-1.0, 1.0)
TASK = "cartoon"
CHANNELS = (16, 32, 48)
RES_BLOCKS = 3


class StyleStudent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3 = CHANNELS
        self.encoder = nn.Sequential(
            ConvNormAct(3, c1, 9, norm=nn.BatchNorm2d),
            SeparableConv(c1, c2, 3, 2), SeparableConv(c2, c3, 3, 2))
        self.body = nn.Sequential(*[
            Residual(nn.Sequential(SeparableConv(c3, c3), SeparableConv(c3, c3, act=False)))
            for _ in range(RES_BLOCKS)])
        self.decoder = nn.Sequential(
            UpConv(SeparableConv(c3, c2)), UpConv(SeparableConv(c2, c1)),
            ConvNormAct(c1, 3, 9, norm=None, act=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.body(self.encoder(x)))


def build(pretrained: bool = True) -> nn.Module:
    model = StyleStudent()
    return load_pretrained(NAME, model) if pretrained else model.eval()
