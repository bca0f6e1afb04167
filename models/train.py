"""Train one model of the zoo:
`python -m mobilize.models.train NAME [--steps N] [--device cpu|cuda]`.

Fixed seed, so a run repeats (bit-exact on the same device and library versions). Writes
models/weights/<NAME>.pt, its sha256 into weights/manifest.json, and a record of the run
(steps, device, seconds, held-out quality) into weights/<NAME>.json.
"""

from __future__ import annotations

import argparse
import enum
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mobilize.contract.files import atomic_write_json
from mobilize.errors import MobilizeError
from mobilize.models import (
    adain,
    data,
    espcn,
    fast_style,
    metrics,
    style_student,
    stylize,
    tiny_style,
    unet,
)
from mobilize.models.weights import record_path, save_weights

SEED = 20261123


class ModelName(enum.StrEnum):
    FAST_STYLE = "fast_style"
    STYLE_STUDENT = "style_student"
    TINY_STYLE = "tiny_style"
    ESPCN = "espcn"
    UNET = "unet"
    ADAIN = "adain"


class Device(enum.StrEnum):
    CPU = "cpu"
    CUDA = "cuda"


MODULES = {ModelName.FAST_STYLE: fast_style, ModelName.STYLE_STUDENT: style_student,
           ModelName.TINY_STYLE: tiny_style, ModelName.ESPCN: espcn, ModelName.UNET: unet,
           ModelName.ADAIN: adain}
DEFAULT_STEPS = 300  # a few minutes on a 2-core CPU; the committed weights used more (see card)


@dataclass(frozen=True)
class TrainConfig:
    name: ModelName
    steps: int
    device: Device
    batch: int = 16
    crop: int = 96
    lr: float = 2e-3
    distill: bool = True
    save_as: str | None = None


Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


def _style_batches(cfg: TrainConfig, target_fn: Callable[[np.ndarray], np.ndarray],
                   rng: np.random.Generator) -> Callable[[], Batch]:
    pairs = data.training_pyramid(target_fn)

    def next_batch() -> Batch:
        photos, targets = data.random_crops(pairs, rng, cfg.batch, cfg.crop)
        assert targets is not None
        return (torch.from_numpy(photos),), torch.from_numpy(targets) * 2 - 1
    return next_batch


def _sr_batches(cfg: TrainConfig, rng: np.random.Generator) -> Callable[[], Batch]:
    pairs = data.training_pyramid()
    crop = cfg.crop - cfg.crop % espcn.SCALE

    def next_batch() -> Batch:
        photos, _ = data.random_crops(pairs, rng, cfg.batch, crop)
        high = torch.from_numpy(photos)
        return (metrics.bicubic_downscale(high, espcn.SCALE),), high
    return next_batch


def _transfer_batches(cfg: TrainConfig, rng: np.random.Generator) -> Callable[[], Batch]:
    pairs = data.training_pyramid()

    def next_batch() -> Batch:
        content, _ = data.random_crops(pairs, rng, cfg.batch, cfg.crop)
        style, _ = data.random_crops(pairs, rng, cfg.batch, cfg.crop)
        targets = np.stack([
            stylize.color_transfer(c.transpose(1, 2, 0), s.transpose(1, 2, 0)).transpose(2, 0, 1)
            for c, s in zip(content, style, strict=True)])
        return (torch.from_numpy(content), torch.from_numpy(style)), \
            torch.from_numpy(targets) * 2 - 1
    return next_batch


def batches_for(cfg: TrainConfig, rng: np.random.Generator) -> Callable[[], Batch]:
    task = MODULES[cfg.name].TASK
    if task == "super_resolution_x3":
        return _sr_batches(cfg, rng)
    if task == "color_transfer":
        return _transfer_batches(cfg, rng)
    return _style_batches(cfg, metrics.TARGETS[task], rng)


class Distiller(nn.Module):
    """Teacher-to-student losses: output L1 plus feature MSE through 1x1 adapters.

    The student's encoder and residual-body outputs (48 channels) are mapped by learned 1x1
    convs onto the teacher's (64 channels); the adapters are dropped after training.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module) -> None:
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        s_ch, t_ch = style_student.CHANNELS[-1], fast_style.CHANNELS[-1]
        self.adapters = nn.ModuleList([nn.Conv2d(s_ch, t_ch, 1) for _ in range(2)])
        self.student = student

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            t_enc = self.teacher.encoder(x)
            t_body = self.teacher.body(t_enc)
            t_out = self.teacher.decoder(t_body)
        s_enc = self.student.encoder(x)
        s_body = self.student.body(s_enc)
        s_out = self.student.decoder(s_body)
        feature_loss = F.mse_loss(self.adapters[0](s_enc), t_enc) + \
            F.mse_loss(self.adapters[1](s_body), t_body)
        return s_out, F.l1_loss(s_out, t_out) + 0.5 * feature_loss


def train(cfg: TrainConfig, initial: nn.Module | None = None) -> dict[str, object]:
    """Train `cfg.name` from scratch, or fine-tune `initial` (e.g. a pruned net) if given."""
    torch.manual_seed(SEED)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    rng = np.random.default_rng(SEED)
    device = torch.device(cfg.device.value)
    module = MODULES[cfg.name]
    model = (initial if initial is not None else module.build(pretrained=False))
    model = model.train().to(device)
    distiller = None
    if cfg.name is ModelName.STYLE_STUDENT and cfg.distill:
        distiller = Distiller(fast_style.build(pretrained=True), model).to(device)
    trainable = distiller if distiller is not None else model
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=cfg.steps)
    next_batch = batches_for(cfg, rng)
    started = time.perf_counter()
    loss_value = float("nan")
    for step in range(cfg.steps):
        inputs, target = next_batch()
        inputs = tuple(t.to(device) for t in inputs)
        target = target.to(device)
        if distiller is not None:
            output, extra = distiller(*inputs)
        else:
            output, extra = model(*inputs), 0.0
        loss = F.l1_loss(output, target) + extra
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_value = loss.item()
        if step % max(1, cfg.steps // 10) == 0 or step == cfg.steps - 1:
            print(f"{cfg.name} step {step + 1}/{cfg.steps} loss {loss_value:.4f}", flush=True)
    seconds = time.perf_counter() - started
    model = model.cpu().eval()
    quality = metrics.heldout_quality(model, module.TASK, module.OUTPUT_RANGE.low)
    name = cfg.save_as or cfg.name.value
    digest = save_weights(name, model)
    record = {**{k: str(v) if isinstance(v, enum.Enum) else v for k, v in asdict(cfg).items()},
              "seed": SEED, "seconds": round(seconds, 1), "final_loss": round(loss_value, 4),
              "heldout_psnr": round(quality.psnr, 2), "heldout_ssim": round(quality.ssim, 4),
              "sha256": digest, "torch": torch.__version__}
    path = record_path(name)
    atomic_write_json(path, record)
    print(f"{name}: held-out PSNR {quality.psnr:.2f} dB, SSIM {quality.ssim:.4f}, "
          f"{seconds:.0f} s, sha256 {digest}")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mobilize.models.train", description=__doc__)
    parser.add_argument("name", type=ModelName, choices=list(ModelName))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--device", type=Device, choices=list(Device), default=Device.CPU)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--no-distill", dest="distill", action="store_false",
                        help="style_student only: learn from the ground truth alone")
    parser.add_argument("--save-as", default=None,
                        help="weights name (default: the model name), e.g. for an ablation")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.device is Device.CUDA and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible to torch; use --device cpu")
    config = TrainConfig(name=args.name, steps=args.steps, device=args.device, batch=args.batch,
                         crop=args.crop, distill=args.distill, save_as=args.save_as)
    try:
        train(config)
    except MobilizeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
