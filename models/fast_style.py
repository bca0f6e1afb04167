"""Johnson-style fast style transfer net (the teacher), trained to the `cartoon` stylization.

ReflectionPad + InstanceNorm convolutions, two stride-2 downsamplings, five residual blocks,
nearest upsampling + conv, tanh. Channels 16/32/64 (Johnson uses 32/64/128) so that the
weights stay small. Input: RGB in [0, 1]; output: RGB in [-1, 1] (tanh).
"""

from __future__ import annotations

import torch
from torch import nn

from exporter.specs import InputSpec, ValueRange
from models.layers import ConvNormAct, Residual, UpConv
from models.weights import load_pretrained

NAME = "fast_style"
INPUTS = (InputSpec("image", (1, 3, 256, 256), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(-1.0, 1.0)
TASK = "cartoon"
CHANNELS = (16, 32, 64)
RES_BLOCKS = 5


class FastStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3 = CHANNELS
        self.encoder = nn.Sequential(
            ConvNormAct(3, c1, 9), ConvNormAct(c1, c2, 3, 2), ConvNormAct(c2, c3, 3, 2))
        self.body = nn.Sequential(*[
            Residual(nn.Sequential(ConvNormAct(c3, c3, 3), ConvNormAct(c3, c3, 3, act=False)))
            for _ in range(RES_BLOCKS)])
        self.decoder = nn.Sequential(
            UpConv(ConvNormAct(c3, c2, 3)), UpConv(ConvNormAct(c2, c1, 3)),
            ConvNormAct(c1, 3, 9, norm=None, act=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.body(self.encoder(x)))


def build(pretrained: bool = True) -> nn.Module:
    model = FastStyle()
    return load_pretrained(NAME, model) if pretrained else model.eval()
