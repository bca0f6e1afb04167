"""A tiny style net (about 8k parameters, the "17 KB" class of mobile style models).

Trained to the `cartoon` stylization. Plain 3x3 convolutions with BatchNorm (folds),
two stride-2 steps, two depthwise-separable residual blocks at 16 channels, nearest
upsampling + conv, tanh. Input: RGB in [0, 1]; output: RGB in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.models.layers import ConvNormAct, Residual, SeparableConv, UpConv
from mobilize.models.weights import load_pretrained

NAME = "tiny_style"
INPUTS = (InputSpec("image", (1, 3, 256, 256), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(-1.0, 1.0)
TASK = "cartoon"


class TinyStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        bn = nn.BatchNorm2d
        self.encoder = nn.Sequential(
            ConvNormAct(3, 8, 3, norm=bn), ConvNormAct(8, 16, 3, 2, norm=bn),
            ConvNormAct(16, 16, 3, 2, norm=bn))
        self.body = nn.Sequential(*[
            Residual(nn.Sequential(SeparableConv(16, 16), SeparableConv(16, 16, act=False)))
            for _ in range(2)])
        self.decoder = nn.Sequential(
            UpConv(ConvNormAct(16, 12, 3, norm=bn)), UpConv(ConvNormAct(12, 8, 3, norm=bn)),
            ConvNormAct(8, 3, 3, norm=None, act=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.body(self.encoder(x)))


def build(pretrained: bool = True) -> nn.Module:
    model = TinyStyle()
    return load_pretrained(NAME, model) if pretrained else model.eval()
