"""The inline test families of tests/exporter/families.py, trained briefly on this CPU.

Issue 7 asks for int8 quality on architectures the exporter has never seen. Random-init nets
are a poor stand-in for what users ship: an untrained InstanceNorm net amplifies input noise
so much that rounding its input to int8 alone keeps PyTorch itself near 30 dB SNR (the
exporter's "input cap"), against ~58 dB for the trained models in models/. Training the same
architectures for a few hundred steps on the tasks of models/ gives weights that behave like
shipped ones; nothing in the exporter was tuned on them.

    python -m benchmarks.trained_families [--steps 300] NAME ...

writes `<out>/<name>.pt` (a state_dict for FAMILIES[name]'s factory) and prints its loss.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mobilize.models import data, metrics, stylize
from tests.exporter.families import FAMILIES

SEED = 20261123
Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


@dataclass(frozen=True)
class Task:
    """What a family learns: a batch maker over models/data's training photos."""

    description: str
    batches: Callable[[np.random.Generator, int, int], Batch]


def _to_range(unit: torch.Tensor, low: float) -> torch.Tensor:
    return unit * 2 - 1 if low < 0 else unit


def _style(target_fn: Callable[[np.ndarray], np.ndarray], low: float,
           ) -> Callable[[np.random.Generator, int, int], Batch]:
    pairs: list[data.PairedPhoto] = []

    def batches(rng: np.random.Generator, batch: int, crop: int) -> Batch:
        if not pairs:  # the targets take seconds: computed on first use only
            pairs.extend(data.training_pyramid(target_fn))
        photos, targets = data.random_crops(pairs, rng, batch, crop)
        assert targets is not None
        return ((_to_range(torch.from_numpy(photos), low),),
                _to_range(torch.from_numpy(targets), low))
    return batches


def _super_resolution(scale: int) -> Callable[[np.random.Generator, int, int], Batch]:
    pairs: list[data.PairedPhoto] = []

    def batches(rng: np.random.Generator, batch: int, crop: int) -> Batch:
        if not pairs:
            pairs.extend(data.training_pyramid())
        photos, _ = data.random_crops(pairs, rng, batch, crop - crop % scale)
        high = torch.from_numpy(photos)
        return (metrics.bicubic_downscale(high, scale),), high
    return batches


def colour_transfer_crops(pairs: list[data.PairedPhoto], rng: np.random.Generator, batch: int,
                          crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Content and style crops in [0, 1], and the content recoloured with the style's
    statistics (models/stylize.color_transfer): a task an AdaIN net can learn."""
    content, _ = data.random_crops(pairs, rng, batch, crop)
    style, _ = data.random_crops(pairs, rng, batch, crop)
    targets = np.stack([stylize.color_transfer(c.transpose(1, 2, 0), s.transpose(1, 2, 0))
                        .transpose(2, 0, 1) for c, s in zip(content, style, strict=True)])
    return content, style, targets.astype(np.float32)


def _colour_transfer() -> Callable[[np.random.Generator, int, int], Batch]:
    pairs: list[data.PairedPhoto] = []

    def batches(rng: np.random.Generator, batch: int, crop: int) -> Batch:
        if not pairs:
            pairs.extend(data.training_pyramid())
        content, style, targets = colour_transfer_crops(pairs, rng, batch, crop)
        return (torch.from_numpy(content), torch.from_numpy(style)), torch.from_numpy(targets)
    return batches


TASKS = {
    "johnson": Task("photo -> cartoon (models/stylize.py)", _style(stylize.cartoon, -1.0)),
    "cyclegan": Task("photo -> cartoon (models/stylize.py)", _style(stylize.cartoon, -1.0)),
    "unet": Task("photo -> sketch (models/stylize.py)", _style(stylize.sketch, -1.0)),
    "espcn": Task("x2 super-resolution of bicubic-downscaled photos", _super_resolution(2)),
    "adain": Task("content + style -> colour transfer", _colour_transfer()),
}


def train_family(name: str, steps: int, batch: int = 8, crop: int = 64,
                 lr: float = 3e-3) -> tuple[torch.nn.Module, float]:
    """FAMILIES[name] from its seeded init, trained `steps` Adam steps with L1; (net, loss)."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    net = FAMILIES[name].build().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    loss_value = float("nan")
    for _ in range(steps):
        inputs, target = TASKS[name].batches(rng, batch, crop)
        loss = F.l1_loss(net(*inputs), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_value = loss.item()
    return net.eval(), loss_value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", choices=sorted(TASKS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("out/trained_families"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        start = time.perf_counter()
        net, loss = train_family(name, args.steps)
        torch.save(net.state_dict(), args.out / f"{name}.pt")
        print(f"{name}: {TASKS[name].description}, {args.steps} steps, final L1 {loss:.4f}, "
              f"{time.perf_counter() - start:.0f} s -> {args.out / name}.pt", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
