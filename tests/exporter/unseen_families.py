"""Generator families users bring to phones that the exporter was never tuned on.

Each family is written here from its paper and reference repository (the `source` field
names both). Layer types, op order, padding modes and quirks follow the reference; widths and
depths are cut down by default so a 64x64 forward is fast on CPU and the weights stay under
~2 M parameters. Weights are random (seeded), so outputs do not fill the declared output
range; the ranges describe the trained models.

Pure torch on purpose: nothing from this project is imported, so these stay a fixed outside
view of what users write.

Every ``build_<family>(size)`` takes the input size (H = W) and returns an eval-mode module.
Only pix2pix uses the size (to pick its number of downsamplings); the others accept any size
divisible by 4 (by 2 for the SR nets). ``size`` defaults to 64, so each builder also works as
a no-argument factory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_SEED = 0
MINUS_ONE_ONE = (-1.0, 1.0)
ZERO_ONE = (0.0, 1.0)
ZERO_255 = (0.0, 255.0)


# --------------------------------------------------------------------------- shared helpers


def init_gan_normal(model: nn.Module, std: float = 0.02) -> None:
    """`init_weights(init_type='normal')` of pytorch-CycleGAN-and-pix2pix: N(0, 0.02) convs,
    N(1, 0.02) BatchNorm scales, zero biases."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, std)
            nn.init.zeros_(module.bias)


@torch.no_grad()
def settle_batchnorm(model: nn.Module, size: int, input_range: tuple[float, float]) -> None:
    """Give BatchNorm real running statistics from a few random images.

    Fresh BatchNorm has mean 0 / var 1, i.e. it is an identity in eval mode and activations
    drift layer after layer; trained models never look like that, and int8 calibration of
    such a net would test nothing. Dropout stays off so it does not skew the statistics.
    """
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the settling batches
        norm.train()
    low, high = input_range
    for _ in range(2):
        model(torch.rand(2, 3, size, size) * (high - low) + low)
    for norm in norms:
        norm.momentum = 0.1
        norm.eval()


def seeded_eval(factory: Callable[[], nn.Module]) -> nn.Module:
    """Build under a fixed seed so two builds have identical weights."""
    torch.manual_seed(WEIGHT_SEED)
    return factory().eval()


def reflect_conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """ReflectionPad2d(k // 2) + unpadded conv: how the style/GAN repos keep borders clean."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


# --------------------------------------------------------------------------- 1. CycleGAN ResNet


class CycleGanResnetBlock(nn.Module):
    """`ResnetBlock` (padding_type='reflect', no dropout): x + IN(conv(relu(IN(conv(x)))))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            reflect_conv(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            reflect_conv(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CycleGanResnetGenerator(nn.Sequential):
    """`ResnetGenerator` of pytorch-CycleGAN-and-pix2pix (norm='instance', i.e. affine=False,
    and therefore conv biases on). 9 blocks (the reference's 256x256 choice). Simplified: ngf 16
    by default (reference 64, ~11.4 M params)."""

    def __init__(self, ngf: int = 16, n_blocks: int = 9) -> None:
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True),
        ]
        width = ngf
        for _ in range(2):  # stride-2 downsamplings (zero padding, as in the reference)
            layers += [
                nn.Conv2d(width, width * 2, 3, 2, 1), nn.InstanceNorm2d(width * 2), nn.ReLU(True),
            ]
            width *= 2
        layers += [CycleGanResnetBlock(width) for _ in range(n_blocks)]
        for _ in range(2):  # output_padding=1 makes each up exactly x2
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, 2, padding=1, output_padding=1),
                nn.InstanceNorm2d(width // 2), nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh()]
        super().__init__(*layers)


def build_cyclegan_resnet(size: int = 64, ngf: int = 16, n_blocks: int = 9) -> nn.Module:
    def make() -> nn.Module:
        model = CycleGanResnetGenerator(ngf, n_blocks)
        init_gan_normal(model)
        return model

    return seeded_eval(make)


# --------------------------------------------------------------------------- 2. pix2pix UNet


class UnetSkipBlock(nn.Module):
    """`UnetSkipConnectionBlock`: down conv 4x4 s2 -> inner block -> up convT 4x4 s2, and the
    block's input concatenated to its output.

    The reference applies LeakyReLU(0.2, inplace=True) to the block input, so the skip it
    concatenates is the *activated* input. Written out-of-place here with the same result.
    """

    def __init__(
        self, outer: int, inner: int, sub: nn.Module | None = None, *,
        outermost: bool = False, dropout: bool = False,
    ) -> None:
        super().__init__()
        innermost = sub is None
        self.outermost = outermost
        self.activate_input = nn.Identity() if outermost else nn.LeakyReLU(0.2)
        down: list[nn.Module] = [nn.Conv2d(outer, inner, 4, 2, 1, bias=False)]
        if not (outermost or innermost):  # no norm where the map is the image or 1x1
            down.append(nn.BatchNorm2d(inner))
        up_in = inner if innermost else inner * 2  # inner blocks return [skip, output]
        up: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=outermost)]
        up.append(nn.Tanh() if outermost else nn.BatchNorm2d(outer))
        if dropout:
            up.append(nn.Dropout(0.5))
        self.down = nn.Sequential(*down)
        self.sub = sub if sub is not None else nn.Identity()
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activate_input(x)
        y = self.up(self.sub(self.down(x)))
        return y if self.outermost else torch.cat([x, y], 1)


class Pix2PixUnet(nn.Module):
    """`UnetGenerator(num_downs=8)` of pytorch-CycleGAN-and-pix2pix (norm='batch', dropout on).

    Built inside out as in the reference: innermost (ngf*8), num_downs-5 ngf*8 blocks with
    Dropout(0.5), then ngf*4, ngf*2, ngf and the outermost block. Simplified: ngf 8 by default
    (reference 64, ~54 M params).
    """

    def __init__(self, num_downs: int = 8, ngf: int = 8) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError("the UNet needs at least 5 downsamplings")
        block = UnetSkipBlock(ngf * 8, ngf * 8)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, block, dropout=True)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(ngf * mult, ngf * mult * 2, block)
        self.model = UnetSkipBlock(3, ngf, block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def unet_downs_for(size: int) -> int:
    """8 downs at 256x256 and above (the "UNet-256"); fewer for smaller inputs, so the
    bottleneck stays >= 1x1 (64x64 -> 6 downs, 128x128 -> 7)."""
    downs = min(8, int(math.log2(size)))
    if size % (2 ** downs):
        raise ValueError(f"pix2pix UNet needs a size divisible by {2 ** downs}, got {size}")
    return downs


def build_pix2pix_unet(size: int = 64, ngf: int = 8) -> nn.Module:
    def make() -> nn.Module:
        model = Pix2PixUnet(unet_downs_for(size), ngf)
        init_gan_normal(model)
        settle_batchnorm(model, size, MINUS_ONE_ONE)
        return model

    return seeded_eval(make)


# --------------------------------------------------------------------------- 3. Johnson


class JohnsonResidualBlock(nn.Module):
    """pytorch/examples `ResidualBlock`: no ReLU after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            reflect_conv(c, c, 3), nn.InstanceNorm2d(c, affine=True), nn.ReLU(),
            reflect_conv(c, c, 3), nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConvLayer(nn.Module):
    """Nearest x2 then reflection-padded conv: the reference's fix for ConvTranspose
    checkerboard artefacts."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = reflect_conv(cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, mode="nearest", scale_factor=2))


class JohnsonTransformerNet(nn.Sequential):
    """pytorch/examples fast_neural_style `TransformerNet`: 9x9 in/out convs, 2 stride-2 downs,
    5 residual blocks, 2 upsample-convs, InstanceNorm(affine=True), no output activation
    (0-255 in and out). Reference widths (32/64/128, ~1.7 M params) by default."""

    def __init__(self, width: int = 32) -> None:
        def conv_in_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
            conv = reflect_conv(cin, cout, kernel, stride)
            return [conv, nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]

        def up_in_relu(cin: int, cout: int) -> list[nn.Module]:
            conv = UpsampleConvLayer(cin, cout, 3)
            return [conv, nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]

        super().__init__(
            *conv_in_relu(3, width, 9),
            *conv_in_relu(width, width * 2, 3, 2),
            *conv_in_relu(width * 2, width * 4, 3, 2),
            *(JohnsonResidualBlock(width * 4) for _ in range(5)),
            *up_in_relu(width * 4, width * 2),
            *up_in_relu(width * 2, width),
            reflect_conv(width, 3, 9),
        )


def build_johnson_transformer(size: int = 64, width: int = 32) -> nn.Module:
    return seeded_eval(lambda: JohnsonTransformerNet(width))


# --------------------------------------------------------------------------- 4. Real-ESRGAN compact


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN `SRVGGNetCompact` (act_type='prelu'): plain 3x3 convs with per-channel PReLU,
    PixelShuffle to the output size, plus the nearest-upsampled input as a global residual.
    Default num_feat 64 / num_conv 16 is the realesr-animevideov3 config (~0.62 M params);
    realesr-general-x4v3 uses num_conv 32."""

    def __init__(self, num_feat: int = 64, num_conv: int = 16, upscale: int = 4) -> None:
        super().__init__()
        self.upscale = upscale
        layers: list[nn.Module] = [
            nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat),
        ]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        layers += [nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1), nn.PixelShuffle(upscale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        return self.body(x) + base


def build_realesrgan_compact(size: int = 64, num_feat: int = 64, num_conv: int = 16) -> nn.Module:
    return seeded_eval(lambda: SRVGGNetCompact(num_feat, num_conv, upscale=4))


# --------------------------------------------------------------------------- 5. ESRGAN RRDB


class ResidualDenseBlock(nn.Module):
    """`ResidualDenseBlock_5C`: each conv sees the block input and every earlier output
    (channel concat); the result is scaled by 0.2 before the residual add."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(nf + i * gc, gc, 3, 1, 1) for i in range(4))
        self.fuse = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)
        for conv in [*self.convs, self.fuse]:  # BasicSR default_init_weights(scale=0.1)
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(self.lrelu(conv(torch.cat(features, 1))))
        return x + 0.2 * self.fuse(torch.cat(features, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: 3 dense blocks, again scaled by 0.2."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualDenseBlock(nf, gc) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN `RRDBNet` x4: conv, RRDB trunk + trunk conv (long skip), two nearest-x2
    upsample+conv, HR conv, last conv; LeakyReLU 0.2, no normalisation. Simplified: nf 32,
    gc 16, 3 RRDBs by default (reference 64 / 32 / 23, ~16.7 M params). Init as the reference:
    only the dense-block convs are scaled (x0.1), so random outputs sit close to 0."""

    def __init__(self, nf: int = 32, gc: int = 16, n_blocks: int = 3) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.trunk = nn.Sequential(*(RRDB(nf, gc) for _ in range(n_blocks)))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.hr_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv_first(x)
        features = features + self.trunk_conv(self.trunk(features))
        for upconv in (self.upconv1, self.upconv2):
            features = self.lrelu(upconv(F.interpolate(features, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.hr_conv(features)))


def build_esrgan_rrdb(size: int = 64, nf: int = 32, gc: int = 16, n_blocks: int = 3) -> nn.Module:
    return seeded_eval(lambda: RRDBNet(nf, gc, n_blocks))


# --------------------------------------------------------------------------- 6. AnimeGANv2


class ConvNormLReLU(nn.Sequential):
    """bryandlee/animegan2-pytorch `ConvNormLReLU`: reflect pad, bias-free conv,
    GroupNorm(1) (= LayerNorm over C,H,W, with per-channel affine), LeakyReLU 0.2."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 3, stride: int = 1,
        padding: int | tuple[int, int, int, int] = 1, groups: int = 1, bias: bool = False,
    ) -> None:
        super().__init__(
            nn.ReflectionPad2d(padding),
            nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups, bias=bias),
            nn.GroupNorm(1, cout, affine=True),
            nn.LeakyReLU(0.2),
        )


class InvertedResBlock(nn.Module):
    """AnimeGANv2 inverted residual: 1x1 expand, depthwise 3x3, 1x1 project + GroupNorm(1);
    residual only when in and out widths match (as in the reference)."""

    def __init__(self, cin: int, cout: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = round(expansion * cin)
        self.use_residual = cin == cout
        self.layers = nn.Sequential(
            ConvNormLReLU(cin, hidden, kernel=1, padding=0),
            ConvNormLReLU(hidden, hidden, groups=hidden, bias=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.GroupNorm(1, cout, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.use_residual else out


class AnimeGanV2Generator(nn.Module):
    """bryandlee/animegan2-pytorch `Generator` (AnimeGANv2, Chen et al.; the PyTorch port of
    TachibanaYoshino/AnimeGANv2). Stride-2 convs use an asymmetric reflect pad (0,1,0,1);
    upsampling is bilinear align_corners=True to sizes read off earlier tensors.
    Simplified: base width 16 by default (reference 32, ~2.2 M params)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        right_bottom_pad = (0, 1, 0, 1)
        self.block_a = nn.Sequential(
            ConvNormLReLU(3, w, kernel=7, padding=3),
            ConvNormLReLU(w, w * 2, stride=2, padding=right_bottom_pad),
            ConvNormLReLU(w * 2, w * 2),
        )
        self.block_b = nn.Sequential(
            ConvNormLReLU(w * 2, w * 4, stride=2, padding=right_bottom_pad),
            ConvNormLReLU(w * 4, w * 4),
        )
        self.block_c = nn.Sequential(
            ConvNormLReLU(w * 4, w * 4),
            InvertedResBlock(w * 4, w * 8),
            *(InvertedResBlock(w * 8, w * 8) for _ in range(3)),
            ConvNormLReLU(w * 8, w * 4),
        )
        self.block_d = nn.Sequential(ConvNormLReLU(w * 4, w * 4), ConvNormLReLU(w * 4, w * 4))
        self.block_e = nn.Sequential(
            ConvNormLReLU(w * 4, w * 2),
            ConvNormLReLU(w * 2, w * 2),
            ConvNormLReLU(w * 2, w, kernel=7, padding=3),
        )
        self.out_layer = nn.Sequential(nn.Conv2d(w, 3, 1, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block_a(x)
        half_size = out.shape[-2:]
        out = self.block_c(self.block_b(out))
        out = F.interpolate(out, half_size, mode="bilinear", align_corners=True)
        out = self.block_d(out)
        out = F.interpolate(out, x.shape[-2:], mode="bilinear", align_corners=True)
        return self.out_layer(self.block_e(out))


def build_animegan_v2(size: int = 64, width: int = 16) -> nn.Module:
    return seeded_eval(lambda: AnimeGanV2Generator(width))


# --------------------------------------------------------------------------- 7. AdaIN


def channel_mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """naoto0804/pytorch-AdaIN `calc_mean_std`: per-(N, C) mean and sqrt(var + eps); the
    reference's `.var()` is the unbiased (N-1) estimate, kept here."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().reshape(n, c, 1, 1)
    return flat.mean(dim=2).reshape(n, c, 1, 1), std


def adaptive_instance_norm(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    content_mean, content_std = channel_mean_std(content)
    style_mean, style_std = channel_mean_std(style)
    return (content - content_mean) / content_std * style_std + style_mean


def relu_conv(cin: int, cout: int) -> list[nn.Module]:
    return [*reflect_conv(cin, cout, 3), nn.ReLU()]


class AdaInStylizer(nn.Module):
    """Huang & Belongie 2017 AdaIN, after naoto0804/pytorch-AdaIN `net.py` (test-time path,
    alpha = 1): VGG-19 encoder (leading 1x1 conv, reflect-padded 3x3 + ReLU, MaxPool
    ceil_mode=True), AdaIN, mirrored decoder with nearest x2 upsampling.
    Simplified: encoder stops at relu3_1 (reference relu4_1) and widths are 16/32/64
    (reference 64/128/256/512); the style image is the same size as the content."""

    INPUT_NAMES = ("photo", "art")  # forward order; alphabetical order is the reverse

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 3, 1),  # the reference's learned colour pre-transform
            *relu_conv(3, w), *relu_conv(w, w),  # relu1_1, relu1_2
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *relu_conv(w, w * 2), *relu_conv(w * 2, w * 2),  # relu2_1, relu2_2
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *relu_conv(w * 2, w * 4),  # relu3_1
        )
        self.decoder = nn.Sequential(
            *relu_conv(w * 4, w * 2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *relu_conv(w * 2, w * 2), *relu_conv(w * 2, w),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *relu_conv(w, w),
            *reflect_conv(w, 3, 3),
        )

    def forward(self, photo: torch.Tensor, art: torch.Tensor) -> torch.Tensor:
        return self.decoder(adaptive_instance_norm(self.encoder(photo), self.encoder(art)))


def init_kaiming_relu(model: nn.Module) -> None:
    """He init with zero biases. Stands in for the pretrained VGG: with PyTorch's default init
    each conv shrinks the signal, and the AdaIN decoder's output came out near-constant."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)


def build_adain_vgg(size: int = 64, width: int = 16) -> nn.Module:
    def make() -> nn.Module:
        model = AdaInStylizer(width)
        init_kaiming_relu(model)
        return model

    return seeded_eval(make)


# --------------------------------------------------------------------------- 8. FSRCNN


class Fsrcnn(nn.Sequential):
    """Dong et al. 2016 FSRCNN, after yjn870/FSRCNN-pytorch: 5x5 feature extraction (d),
    1x1 shrink (s), m 3x3 mapping layers, 1x1 expand, per-channel PReLU after each, then a
    9x9 ConvTranspose2d with stride = scale (padding 4, output_padding scale-1 -> exactly x
    scale). Paper config d=56, s=12, m=4 (already tiny). Simplified: RGB in and out
    (reference works on the Y channel only)."""

    def __init__(self, scale: int = 3, d: int = 56, s: int = 12, m: int = 4) -> None:
        mapping: list[nn.Module] = []
        for _ in range(m):
            mapping += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        super().__init__(
            nn.Conv2d(3, d, 5, padding=2), nn.PReLU(d),
            nn.Conv2d(d, s, 1), nn.PReLU(s),
            *mapping,
            nn.Conv2d(s, d, 1), nn.PReLU(d),
            nn.ConvTranspose2d(d, 3, 9, stride=scale, padding=4, output_padding=scale - 1),
        )


def build_fsrcnn(size: int = 64, scale: int = 3) -> nn.Module:
    return seeded_eval(lambda: Fsrcnn(scale))


class Espcn(nn.Sequential):
    """Shi et al. 2016 ESPCN, after yjn870/ESPCN-pytorch: 5x5 conv tanh, 3x3 conv tanh,
    3x3 conv to 3*r*r channels, PixelShuffle(r). Simplified: RGB (reference: Y channel)."""

    def __init__(self, scale: int = 3) -> None:
        super().__init__(
            nn.Conv2d(3, 64, 5, padding=2), nn.Tanh(),
            nn.Conv2d(64, 32, 3, padding=1), nn.Tanh(),
            nn.Conv2d(32, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )


def build_espcn(size: int = 64, scale: int = 3) -> nn.Module:
    return seeded_eval(lambda: Espcn(scale))


# --------------------------------------------------------------------------- 9. MobileNet generator


def conv_bn_relu6(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    ]


class MobileInvertedResidual(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand + BN + ReLU6, depthwise 3x3 (stride) + BN +
    ReLU6, linear 1x1 project + BN; identity skip when stride 1 and widths match."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expansion: int = 4) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        self.layers = nn.Sequential(
            *conv_bn_relu6(cin, hidden, 1),
            *conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.use_residual else out


class MobileNetGenerator(nn.Module):
    """Encoder-decoder image-to-image generator built from MobileNetV2 blocks (Sandler et al.
    2018; block layout as torchvision's `InvertedResidual`), the pattern of mobile GAN
    generators such as GAN Compression's (mit-han-lab/gan-compression) depthwise-separable
    ones. Not one published network: BatchNorm + ReLU6 (mobile-friendly, foldable norm)
    instead of InstanceNorm, additive skips (cheaper than concat), bilinear x2 upsampling
    (align_corners=False), depthwise-separable head and tanh."""

    def __init__(self, width: int = 16, n_body: int = 3) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(*conv_bn_relu6(3, w, 3))
        self.down1 = nn.Sequential(
            MobileInvertedResidual(w, w * 2, stride=2), MobileInvertedResidual(w * 2, w * 2),
        )
        self.down2 = MobileInvertedResidual(w * 2, w * 4, stride=2)
        self.body = nn.Sequential(*(MobileInvertedResidual(w * 4, w * 4) for _ in range(n_body)))
        self.up1 = MobileInvertedResidual(w * 4, w * 2)
        self.up2 = MobileInvertedResidual(w * 2, w)
        self.head = nn.Sequential(
            *conv_bn_relu6(w, w, 3, groups=w),  # depthwise
            nn.Conv2d(w, 3, 1),  # pointwise to RGB
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = self.stem(x)
        half = self.down1(full)
        out = self.body(self.down2(half))
        out = self.up1(upsample_bilinear_x2(out)) + half
        out = self.up2(upsample_bilinear_x2(out)) + full
        return self.head(out)


def upsample_bilinear_x2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def build_mobilenet_generator(size: int = 64, width: int = 16) -> nn.Module:
    def make() -> nn.Module:
        model = MobileNetGenerator(width)
        settle_batchnorm(model, size, MINUS_ONE_ONE)
        return model

    return seeded_eval(make)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class UnseenFamily:
    name: str
    build: Callable[[int], nn.Module]  # takes the input size (H=W), returns an eval-mode module
    input_names: tuple[str, ...]  # in forward() order
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    scale: int  # output size / input size (1 for image-to-image)
    per_image_norm: bool  # InstanceNorm/AdaIN/GroupNorm/LayerNorm inside
    usual_size: int  # the input size users run it at
    source: str  # paper + reference repository it follows

    @property
    def INPUT_NAMES(self) -> tuple[str, ...]:  # noqa: N802 - the spelling callers were promised
        return self.input_names


def example_inputs(family: UnseenFamily, size: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Uniform random NCHW images inside the family's input range, one per input."""
    generator = torch.Generator().manual_seed(seed)
    low, high = family.input_range
    return tuple(
        torch.rand(1, 3, size, size, generator=generator) * (high - low) + low
        for _ in family.input_names
    )


FAMILIES: dict[str, UnseenFamily] = {
    family.name: family
    for family in (
        UnseenFamily(
            "cyclegan_resnet", build_cyclegan_resnet, ("image",), MINUS_ONE_ONE, MINUS_ONE_ONE,
            scale=1, per_image_norm=True, usual_size=256,
            source="Zhu et al. 2017 CycleGAN; junyanz/pytorch-CycleGAN-and-pix2pix ResnetGenerator",
        ),
        UnseenFamily(
            "pix2pix_unet", build_pix2pix_unet, ("image",), MINUS_ONE_ONE, MINUS_ONE_ONE,
            scale=1, per_image_norm=False, usual_size=256,
            source="Isola et al. 2017 pix2pix; "
            "junyanz/pytorch-CycleGAN-and-pix2pix UnetGenerator (unet_256)",
        ),
        UnseenFamily(
            "johnson_transformer", build_johnson_transformer, ("image",), ZERO_255, ZERO_255,
            scale=1, per_image_norm=True, usual_size=256,
            source="Johnson et al. 2016 perceptual losses (+ Ulyanov instance norm); "
            "pytorch/examples fast_neural_style TransformerNet",
        ),
        UnseenFamily(
            "realesrgan_compact", build_realesrgan_compact, ("image",), ZERO_ONE, ZERO_ONE,
            scale=4, per_image_norm=False, usual_size=128,
            source="Wang et al. 2021 Real-ESRGAN; "
            "xinntao/Real-ESRGAN realesrgan/archs/srvgg_arch.py",
        ),
        UnseenFamily(
            "esrgan_rrdb", build_esrgan_rrdb, ("image",), ZERO_ONE, ZERO_ONE,
            scale=4, per_image_norm=False, usual_size=128,
            source="Wang et al. 2018 ESRGAN; "
            "xinntao/ESRGAN RRDBNet_arch.py / BasicSR rrdbnet_arch.py",
        ),
        UnseenFamily(
            "animegan_v2", build_animegan_v2, ("image",), MINUS_ONE_ONE, MINUS_ONE_ONE,
            scale=1, per_image_norm=True, usual_size=256,
            source="Chen et al. AnimeGAN(v2); bryandlee/animegan2-pytorch model.py",
        ),
        UnseenFamily(
            "adain_vgg", build_adain_vgg, AdaInStylizer.INPUT_NAMES, ZERO_ONE, ZERO_ONE,
            scale=1, per_image_norm=True, usual_size=256,
            source="Huang & Belongie 2017 AdaIN; naoto0804/pytorch-AdaIN net.py",
        ),
        UnseenFamily(
            "fsrcnn", build_fsrcnn, ("image",), ZERO_ONE, ZERO_ONE,
            scale=3, per_image_norm=False, usual_size=128,
            source="Dong et al. 2016 FSRCNN; yjn870/FSRCNN-pytorch models.py",
        ),
        UnseenFamily(
            "espcn", build_espcn, ("image",), ZERO_ONE, ZERO_ONE,
            scale=3, per_image_norm=False, usual_size=128,
            source="Shi et al. 2016 ESPCN; yjn870/ESPCN-pytorch models.py",
        ),
        UnseenFamily(
            "mobilenet_generator", build_mobilenet_generator, ("image",),
            MINUS_ONE_ONE, MINUS_ONE_ONE,
            scale=1, per_image_norm=False, usual_size=256,
            source="Sandler et al. 2018 MobileNetV2 inverted residuals in an encoder-decoder "
            "(cf. mit-han-lab/gan-compression mobile generators); own composition",
        ),
    )
}
