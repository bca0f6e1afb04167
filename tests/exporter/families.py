"""Tiny inline generator families the exporter must convert (random init, a few k params).

Each mirrors the layer mix of a family users ship; they are built here, not imported from
models/, so that the exporter's tests stand on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange

MINUS_ONE_ONE = ValueRange(-1.0, 1.0)
ZERO_ONE = ValueRange(0.0, 1.0)


class ConvNormRelu(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, affine: bool = True):
        super().__init__(
            nn.ReflectionPad2d(k // 2),
            nn.Conv2d(cin, cout, k, stride),
            nn.InstanceNorm2d(cout, affine=affine),
            nn.ReLU(),
        )


class JohnsonStyle(nn.Module):
    """Johnson et al. style net: reflection pad, instance norm (affine and not), nearest up."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.down = nn.Sequential(
            ConvNormRelu(3, width, 9, affine=True),
            ConvNormRelu(width, width * 2, 3, stride=2, affine=False),
        )
        self.res = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width * 2, width * 2, 3),
            nn.InstanceNorm2d(width * 2, affine=True), nn.ReLU(),
        )
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvNormRelu(width * 2, width, 3, affine=True),
            nn.ReflectionPad2d(4), nn.Conv2d(width, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(x)
        h = h + self.res(h)
        return torch.tanh(self.up(h))


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CycleGanResnet(nn.Module):
    """CycleGAN ResNet generator: InstanceNorm2d(affine=False), ConvTranspose2d op=1."""

    def __init__(self, width: int = 8, blocks: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(3, width, 7), nn.InstanceNorm2d(width), nn.ReLU(True),
            nn.Conv2d(width, width * 2, 3, 2, 1), nn.InstanceNorm2d(width * 2), nn.ReLU(True),
        ]
        layers += [ResnetBlock(width * 2) for _ in range(blocks)]
        layers += [
            nn.ConvTranspose2d(width * 2, width, 3, 2, padding=1, output_padding=1),
            nn.InstanceNorm2d(width), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UNet(nn.Module):
    """pix2pix U-Net: strided convs, BatchNorm, LeakyReLU, ConvTranspose2d, skip concat."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.d1 = nn.Conv2d(3, width, 4, 2, 1)
        self.d2 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(width, width * 2, 4, 2, 1),
                                nn.BatchNorm2d(width * 2))
        self.d3 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(width * 2, width * 2, 4, 2, 1))
        self.u3 = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(width * 2, width * 2, 4, 2, 1),
                                nn.BatchNorm2d(width * 2))
        self.u2 = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(width * 4, width, 4, 2, 1),
                                nn.BatchNorm2d(width))
        self.u1 = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(width * 2, 3, 4, 2, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.d1(x)
        e2 = self.d2(e1)
        e3 = self.d3(e2)
        h = self.u3(e3)
        h = self.u2(torch.cat([h, e2], 1))
        return self.u1(torch.cat([h, e1], 1))


class Espcn(nn.Module):
    """ESPCN-like x2 super-resolution: PReLU and PixelShuffle, output in [0, 1]."""

    def __init__(self, width: int = 16, scale: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 5, padding=2), nn.PReLU(width),
            nn.Conv2d(width, width // 2, 3, padding=1), nn.PReLU(),
            nn.Conv2d(width // 2, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.body(x), 0.0, 1.0)


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    c_mean = content.mean(dim=(2, 3), keepdim=True)
    c_std = (content.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    s_mean = style.mean(dim=(2, 3), keepdim=True)
    s_std = (style.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return (content - c_mean) / c_std * s_std + s_mean


class AdaInStylizer(nn.Module):
    """Two inputs (content, style): shared encoder, AdaIN on features, decoder."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, 2, 1), nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width * 2, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid(),
        )

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.decoder(adain(self.encoder(content), self.encoder(style)))


@dataclass(frozen=True)
class Family:
    name: str
    factory: Callable[[], nn.Module]
    input_names: tuple[str, ...]
    value_range: ValueRange

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        return self.factory().eval()

    def inputs(self, size: int) -> tuple[InputSpec, ...]:
        return tuple(
            InputSpec(name, (1, 3, size, size), self.value_range) for name in self.input_names
        )


FAMILIES = {
    family.name: family
    for family in (
        Family("johnson", JohnsonStyle, ("image",), MINUS_ONE_ONE),
        Family("cyclegan", CycleGanResnet, ("image",), MINUS_ONE_ONE),
        Family("unet", UNet, ("image",), MINUS_ONE_ONE),
        Family("espcn", Espcn, ("image",), ZERO_ONE),
        Family("adain", AdaInStylizer, ("content", "style"), ZERO_ONE),
    )
}


def build_johnson() -> nn.Module:
    return FAMILIES["johnson"].build()


def build_cyclegan() -> nn.Module:
    return FAMILIES["cyclegan"].build()


def build_unet() -> nn.Module:
    return FAMILIES["unet"].build()


def build_espcn() -> nn.Module:
    return FAMILIES["espcn"].build()


def build_adain() -> nn.Module:
    return FAMILIES["adain"].build()
