"""Building blocks shared by the generators."""

from __future__ import annotations

import torch
from torch import nn


class ConvNormAct(nn.Sequential):
    """ReflectionPad + Conv + norm + activation (Johnson's basic unit)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1,
                 norm: type[nn.Module] | None = nn.InstanceNorm2d, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2),
                                   nn.Conv2d(c_in, c_out, kernel, stride, bias=norm is None)]
        if norm is not None:
            layers.append(norm(c_out, affine=True) if norm is nn.InstanceNorm2d else norm(c_out))
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise k x k then pointwise 1 x 1, each with BatchNorm (folds into the conv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                 act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(kernel // 2),
            nn.Conv2d(c_in, c_in, kernel, stride, groups=c_in, bias=False),
            nn.BatchNorm2d(c_in), nn.ReLU(inplace=True),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpConv(nn.Sequential):
    """Nearest x2 upsampling then a convolution (no checkerboard, unlike ConvTranspose)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), conv)
