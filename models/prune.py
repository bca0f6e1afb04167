"""Structured channel pruning of fast_style, then fine-tuning: `python -m mobilize.models.prune`.

Inside each residual branch (conv -> InstanceNorm -> ReLU -> conv -> InstanceNorm) the inner
channels can go without touching the residual stream. A channel's importance is the L1 norm
of its first-conv filter times |InstanceNorm gamma| (what it can contribute after the norm);
the `inner` most important of the 64 are kept in every block, the second conv's matching
input channels with them. The narrowed net is then fine-tuned to the cartoon target and saved
as weights `fast_style_pruned`; `build_pruned()` loads it.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from mobilize.models import fast_style, metrics
from mobilize.models.train import Device, ModelName, TrainConfig, train
from mobilize.models.weights import load_pretrained

NAME = "fast_style_pruned"
INNER = 24  # of fast_style's 64 residual-branch channels


def _slice_conv_norm(source: nn.Sequential, target: nn.Sequential, keep_out: torch.Tensor | None,
                     keep_in: torch.Tensor | None) -> None:
    """Copy ConvNormAct weights from `source` into the narrower `target`."""
    weight = source[1].weight.data
    if keep_out is not None:
        weight = weight[keep_out]
    if keep_in is not None:
        weight = weight[:, keep_in]
    target[1].weight.data.copy_(weight)
    norm_out = keep_out if keep_out is not None else slice(None)
    target[2].weight.data.copy_(source[2].weight.data[norm_out])
    target[2].bias.data.copy_(source[2].bias.data[norm_out])


def prune(teacher: fast_style.FastStyle, inner: int = INNER) -> fast_style.FastStyle:
    pruned = fast_style.FastStyle(inner=inner)
    pruned.encoder.load_state_dict(teacher.encoder.state_dict())
    pruned.decoder.load_state_dict(teacher.decoder.state_dict())
    for old_block, new_block in zip(teacher.body, pruned.body, strict=True):
        first, second = old_block.body[0], old_block.body[1]
        importance = first[1].weight.data.abs().sum(dim=(1, 2, 3)) * first[2].weight.data.abs()
        keep = importance.argsort(descending=True)[:inner].sort().values
        _slice_conv_norm(first, new_block.body[0], keep_out=keep, keep_in=None)
        _slice_conv_norm(second, new_block.body[1], keep_out=None, keep_in=keep)
    return pruned.eval()


def build_pruned(pretrained: bool = True) -> nn.Module:
    model = fast_style.FastStyle(inner=INNER)
    return load_pretrained(NAME, model) if pretrained else model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mobilize.models.prune", description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", type=Device, choices=list(Device), default=Device.CPU)
    args = parser.parse_args(argv)
    pruned = prune(fast_style.build(pretrained=True))
    before = metrics.heldout_quality(pruned, fast_style.TASK, -1.0)
    print(f"pruned to {INNER} inner channels, before fine-tuning: held-out PSNR "
          f"{before.psnr:.2f} dB, SSIM {before.ssim:.4f}")
    train(TrainConfig(name=ModelName.FAST_STYLE, steps=args.steps, device=args.device,
                      lr=5e-4, save_as=NAME), initial=pruned)


if __name__ == "__main__":
    main()
