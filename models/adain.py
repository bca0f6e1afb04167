"""A two-input AdaIN stylizer (Huang & Belongie 2017, small), trained to `color_transfer`.

One shared encoder reads content and style; AdaIN gives the content features the per-channel
mean and standard deviation of the style features; a decoder draws the picture. The target
is Reinhard-style colour transfer (content's YCbCr channels matched to the style's mean/std),
so the net has an exact, computable ground truth. Inputs: content and style RGB in [0, 1],
any sizes (each 1x3x256x256 here); output: RGB in [-1, 1] at the content's size.
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.models.layers import ConvNormAct, UpConv
from mobilize.models.weights import load_pretrained

NAME = "adain"
INPUTS = (
    InputSpec("content", (1, 3, 256, 256), ValueRange(0.0, 1.0)),
    InputSpec("style", (1, 3, 256, 256), ValueRange(0.0, 1.0)),
)
OUTPUT_RANGE = ValueRange(-1.0, 1.0)
TASK = "color_transfer"
EPS = 1e-5


def adaptive_instance_norm(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    c_mean = content.mean(dim=(2, 3), keepdim=True)
    c_std = (content.var(dim=(2, 3), keepdim=True, unbiased=False) + EPS).sqrt()
    s_mean = style.mean(dim=(2, 3), keepdim=True)
    s_std = (style.var(dim=(2, 3), keepdim=True, unbiased=False) + EPS).sqrt()
    return (content - c_mean) / c_std * s_std + s_mean


class AdaIN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            ConvNormAct(3, 16, 3, norm=None), ConvNormAct(16, 32, 3, 2, norm=None),
            ConvNormAct(32, 64, 3, 2, norm=None))
        self.decoder = nn.Sequential(
            ConvNormAct(64, 64, 3, norm=None),
            UpConv(ConvNormAct(64, 32, 3, norm=None)), UpConv(ConvNormAct(32, 16, 3, norm=None)),
            ConvNormAct(16, 3, 3, norm=None, act=False), nn.Tanh())

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.decoder(adaptive_instance_norm(self.encoder(content), self.encoder(style)))


def build(pretrained: bool = True) -> nn.Module:
    model = AdaIN()
    return load_pretrained(NAME, model) if pretrained else model.eval()
