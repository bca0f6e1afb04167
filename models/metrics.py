"""Figures for the model cards: parameters, file size, MACs, quality on held-out photos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from mobilize.models import data, stylize


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of Conv2d, ConvTranspose2d and Linear layers for one forward."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        per_output = (module.in_channels // module.groups) * module.kernel_size[0] * \
            module.kernel_size[1]
        total += output.numel() * per_output

    def transpose_hook(module: nn.ConvTranspose2d, inputs: tuple, _output: torch.Tensor) -> None:
        nonlocal total
        per_input = (module.out_channels // module.groups) * module.kernel_size[0] * \
            module.kernel_size[1]
        total += inputs[0].numel() * per_input

    def linear_hook(module: nn.Linear, inputs: tuple, _output: torch.Tensor) -> None:
        nonlocal total
        total += inputs[0].numel() // module.in_features * module.in_features * \
            module.out_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.ConvTranspose2d):
            hooks.append(module.register_forward_hook(transpose_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return total


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()


def to_image(tensor: torch.Tensor, output_low: float) -> np.ndarray:
    """NCHW output -> HxWx3 in [0, 1] (tanh outputs in [-1, 1] mapped back first)."""
    array = tensor[0].detach().cpu().numpy().transpose(1, 2, 0)
    if output_low < 0:
        array = (array + 1.0) / 2.0
    return np.clip(array, 0.0, 1.0)


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """How the super-resolution inputs are made: antialiased bicubic downscaling."""
    return F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def sr_size(size: int, scale: int = 3) -> int:
    """The high-resolution side used for SR evaluation: `size` rounded up to a multiple."""
    return -(-size // scale) * scale


@dataclass(frozen=True)
class Quality:
    psnr: float
    ssim: float


def _score(pairs: list[tuple[np.ndarray, np.ndarray]]) -> Quality:
    psnrs = [peak_signal_noise_ratio(t, np.clip(o, 0, 1), data_range=1.0) for o, t in pairs]
    ssims = [structural_similarity(t, np.clip(o, 0, 1), data_range=1.0, channel_axis=2)
             for o, t in pairs]
    return Quality(psnr=float(np.mean(psnrs)), ssim=float(np.mean(ssims)))


TARGETS = {"cartoon": stylize.cartoon, "sketch": stylize.sketch}


@torch.no_grad()
def heldout_quality(model: nn.Module, task: str, output_low: float, size: int = 256) -> Quality:
    """Mean PSNR/SSIM of the model against its ground truth on the held-out photos."""
    model.eval()
    if task == "super_resolution_x3":
        pairs = []
        for hr in data.heldout_images(sr_size(size)):
            low = bicubic_downscale(to_tensor(hr), 3)
            pairs.append((to_image(model(low), output_low), hr))
        return _score(pairs)
    photos = data.heldout_images(size)
    if task == "color_transfer":
        pairs = []
        for index, content in enumerate(photos):
            style = photos[(index + 1) % len(photos)]
            out = model(to_tensor(content), to_tensor(style))
            pairs.append((to_image(out, output_low), stylize.color_transfer(content, style)))
        return _score(pairs)
    target_fn = TARGETS[task]
    return _score([(to_image(model(to_tensor(p)), output_low), target_fn(p)) for p in photos])


def baseline_quality(task: str, size: int = 256) -> Quality:
    """What doing nothing clever scores: bicubic for SR; the unchanged photo otherwise."""
    if task == "super_resolution_x3":
        pairs = []
        for hr in data.heldout_images(sr_size(size)):
            up = bicubic_upscale(bicubic_downscale(to_tensor(hr), 3), 3)
            pairs.append((to_image(up, 0.0), hr))
        return _score(pairs)
    photos = data.heldout_images(size)
    if task == "color_transfer":
        return _score([(c, stylize.color_transfer(c, photos[(i + 1) % len(photos)]))
                       for i, c in enumerate(photos)])
    return _score([(p, TARGETS[task](p)) for p in photos])
