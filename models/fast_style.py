"""Johnson-style fast style transfer net (the teacher), trained to the `cartoon` stylization.

ReflectionPad convolutions, two stride-2 downsamplings, five residual blocks with
InstanceNorm, nearest upsampling + conv, tanh. Channels 16/32/64 (Johnson uses 32/64/128) so
that the weights stay small. InstanceNorm sits only inside the residual branches: with it in
every layer (Johnson's layout) each image's colour statistics are normalized away, and the
cartoon target's colour grade depends on them (that layout reached 20.2 dB held-out PSNR at
3000 steps against 24.8 dB for the 8k-parameter tiny_style); the identity path keeps them.
Input: RGB in [0, 1]; output: RGB in [-1, 1] (tanh).
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.models.layers import ConvNormAct, Residual, UpConv
from mobilize.models.weights import load_pretrained

NAME = "fast_style"
INPUTS = (InputSpec("image", (1, 3, 256, 256), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(-1.0, 1.0)
TASK = "cartoon"
CHANNELS = (16, 32, 64)
RES_BLOCKS = 5


class FastStyle(nn.Module):
    def __init__(self, inner: int = CHANNELS[-1]) -> None:
        """`inner`: width inside each residual branch (models/prune.py narrows it)."""
        super().__init__()
        c1, c2, c3 = CHANNELS
        self.encoder = nn.Sequential(
            ConvNormAct(3, c1, 9, norm=None), ConvNormAct(c1, c2, 3, 2, norm=None),
            ConvNormAct(c2, c3, 3, 2, norm=None))
        self.body = nn.Sequential(*[
            Residual(nn.Sequential(ConvNormAct(c3, inner, 3),
                                   ConvNormAct(inner, c3, 3, act=False)))
            for _ in range(RES_BLOCKS)])
        self.decoder = nn.Sequential(
            UpConv(ConvNormAct(c3, c2, 3, norm=None)), UpConv(ConvNormAct(c2, c1, 3, norm=None)),
            ConvNormAct(c1, 3, 9, norm=None, act=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.body(self.encoder(x)))


def build(pretrained: bool = True) -> nn.Module:
    model = FastStyle()
    return load_pretrained(NAME, model) if pretrained else model.eval()
