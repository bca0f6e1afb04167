"""A pix2pix-style U-Net generator, trained to the `sketch` target (photo -> pencil sketch).

Four stride-2 4x4 conv downsamplings (LeakyReLU 0.2, BatchNorm except the first), four
ConvTranspose2d upsamplings (ReLU, BatchNorm) with skip concatenations, tanh.
Input: RGB in [0, 1] (sides divisible by 16); output: RGB in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.models.weights import load_pretrained

NAME = "unet"
INPUTS = (InputSpec("image", (1, 3, 256, 256), ValueRange(0.0, 1.0)),)
OUTPUT_RANGE = ValueRange(-1.0, 1.0)
TASK = "sketch"
CHANNELS = (16, 32, 64, 64)


def _down(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3, c4 = CHANNELS
        self.downs = nn.ModuleList([
            _down(3, c1, norm=False), _down(c1, c2, True), _down(c2, c3, True),
            _down(c3, c4, True)])
        self.ups = nn.ModuleList([_up(c4, c3), _up(c3 * 2, c2), _up(c2 * 2, c1)])
        self.head = nn.Sequential(nn.ConvTranspose2d(c1 * 2, 3, 4, 2, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself is x
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], dim=1)
        return self.head(x)


def build(pretrained: bool = True) -> nn.Module:
    model = UNet()
    return load_pretrained(NAME, model) if pretrained else model.eval()
