"""Quantization-aware fine-tuning of a zoo model: `python -m mobilize.models.qat NAME [--steps N]`.

Starts from the committed fp32 weights, inserts torch's own fake quantization where the
exporter's full-integer tflite-int8 rounds (weights: per-output-channel symmetric int8 on
[-127, 127]; activations: per-tensor asymmetric int8 where TFLite keeps an int8 tensor),
fine-tunes briefly with the model's training loss, strips the fake quantization and saves
plain float weights as `<NAME>_qat` (sha256 into the manifest, a run record beside them).
The exporter's post-training int8 then quantizes these weights as it does any others.

Where the fake quantization sits, and why there:
- weights of every Conv2d/ConvTranspose2d. Per-channel symmetric rounding commutes with the
  per-channel scale that folding a BatchNorm applies, so quantizing the raw weight gives the
  grid the exporter gets after folding; the saved weights lie on that grid.
- the model's inputs: fixed [low, high] of INPUTS (the int8 input tensor's range).
- after a conv only where TFLite keeps its output as a tensor: not before a BatchNorm (folded)
  nor before a ReLU (fused into the conv); after every norm/activation unless a ReLU follows;
  Tanh with TFLite's fixed int8 output (scale 1/128, zero point 0); each residual sum.
- ranges: moving-average min/max observers (torch.ao.quantization.FakeQuantize),
  calibrated on training batches before the first step, frozen for the last fifth of it.
Not modelled: the ops inside AdaIN's statistics, InstanceNorm's decomposition and U-Net's
concatenations (TFLite rounds there too; QAT leaves those to the exporter's calibration).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import (
    FakeQuantize,
    FixedQParamsFakeQuantize,
    FixedQParamsObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)
from torch.nn.utils import parametrize

from mobilize.contract.files import atomic_write_json
from mobilize.errors import MobilizeError
from mobilize.models import fast_style, metrics
from mobilize.models.train import MODULES, SEED, Device, ModelName, TrainConfig, batches_for
from mobilize.models.weights import load_pretrained, record_path, save_weights

SUFFIX = "_qat"
DEFAULT_STEPS = 300  # minutes on a 2-core CPU: enough to adapt, not to retrain
DEFAULT_LR = 1e-4  # fine-tuning: a twentieth of the training peak (2e-3)
CALIBRATION_BATCHES = 8
FREEZE_AT = 0.8  # observers stop moving for the last fifth: the ranges the weights settle to
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Hardtanh)
NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d)
CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def qat_name(name: str) -> str:
    return f"{name}{SUFFIX}"


class WeightFakeQuant(nn.Module):
    """Parametrization: a conv weight as TFLite int8 stores it (per output channel, symmetric
    on [-127, 127]; the observer sees only the current weight)."""

    def __init__(self, channel_axis: int) -> None:
        super().__init__()
        self.fake_quant = FakeQuantize(
            observer=MovingAveragePerChannelMinMaxObserver, averaging_constant=1.0,
            quant_min=-127, quant_max=127, dtype=torch.qint8,
            qscheme=torch.per_channel_symmetric, ch_axis=channel_axis)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.fake_quant(weight)


def activation_fake_quant() -> FakeQuantize:
    """Per-tensor asymmetric int8 with a moving-average min/max range (zero kept exact)."""
    return FakeQuantize(observer=MovingAverageMinMaxObserver, averaging_constant=0.01,
                        quant_min=-128, quant_max=127, dtype=torch.qint8,
                        qscheme=torch.per_tensor_affine)


def fixed_fake_quant(low: float, high: float) -> FixedQParamsFakeQuantize:
    """A range TFLite fixes: int8 input of [low, high], or tanh's [-1, 1) at scale 1/128."""
    scale = (high - low) / 256 if low < 0 else (high - low) / 255
    zero_point = round(-128 - low / scale)
    observer = FixedQParamsObserver.with_args(scale=scale, zero_point=zero_point,
                                              dtype=torch.qint8, quant_min=-128, quant_max=127)
    return FixedQParamsFakeQuantize(observer=observer)


def _rounded_outputs(container: nn.Module) -> Iterator[nn.Module]:
    """The children of a Sequential whose output TFLite keeps as an int8 tensor."""
    children = list(container.children())
    for index, child in enumerate(children):
        after = children[index + 1] if index + 1 < len(children) else None
        if isinstance(after, nn.ReLU) and isinstance(child, (*CONVS, nn.BatchNorm2d)):
            continue  # fused into the conv (and its folded BatchNorm)
        if isinstance(child, CONVS) and isinstance(after, nn.BatchNorm2d):
            continue  # folded
        if isinstance(child, (*CONVS, *NORMS, *ACTIVATIONS)):
            yield child


@dataclass
class FakeQuantized:
    """A model with fake quantization inserted; `strip()` gives back the plain model."""

    model: nn.Module
    quantizers: nn.ModuleList = field(default_factory=nn.ModuleList)
    handles: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list)

    def fake_quantizers(self) -> Iterator[FakeQuantize]:
        for module in (*self.quantizers.modules(), *self.model.modules()):
            if isinstance(module, FakeQuantize):
                yield module

    def set_observing(self, enabled: bool) -> None:
        for quantizer in self.fake_quantizers():
            (quantizer.enable_observer if enabled else quantizer.disable_observer)()

    def set_rounding(self, enabled: bool) -> None:
        for quantizer in self.fake_quantizers():
            (quantizer.enable_fake_quant if enabled else quantizer.disable_fake_quant)()

    def strip(self) -> nn.Module:
        """Remove hooks and parametrizations; the weights keep their int8-grid values."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        for module in self.model.modules():
            if parametrize.is_parametrized(module, "weight"):
                with torch.no_grad():
                    parametrize.remove_parametrizations(module, "weight",
                                                        leave_parametrized=True)
        return self.model


def _output_hook(quantizer: nn.Module) -> Callable[..., torch.Tensor]:
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return quantizer(output)
    return hook


def insert_fake_quant(model: nn.Module, module: ModuleType) -> FakeQuantized:
    """Fake-quantize `model` in place (architecture module `module` gives the input ranges)."""
    quantized = FakeQuantized(model)
    for layer in model.modules():
        if isinstance(layer, CONVS):
            axis = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
            parametrize.register_parametrization(layer, "weight", WeightFakeQuant(axis))
    points: list[nn.Module] = []
    for container in model.modules():
        if isinstance(container, nn.Sequential):
            points.extend(_rounded_outputs(container))
        elif type(container).__name__ == "Residual":
            points.append(container)
    for point in dict.fromkeys(points):  # a Sequential's last child may be listed twice
        quantizer = (fixed_fake_quant(-1.0, 1.0) if isinstance(point, nn.Tanh)
                     else activation_fake_quant())
        quantized.quantizers.append(quantizer)
        quantized.handles.append(point.register_forward_hook(_output_hook(quantizer)))
    inputs = nn.ModuleList([fixed_fake_quant(s.value_range.low, s.value_range.high)
                            for s in module.INPUTS])
    quantized.quantizers.append(inputs)

    def round_inputs(_module: nn.Module, args: tuple) -> tuple:
        return tuple(q(a) for q, a in zip(inputs, args, strict=True))
    quantized.handles.append(model.register_forward_pre_hook(round_inputs))
    return quantized


def freeze_batch_norm(model: nn.Module) -> None:
    """Inference statistics during fine-tuning, as folded into the int8 convs."""
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eval()


@dataclass(frozen=True)
class QatConfig:
    name: ModelName
    steps: int = DEFAULT_STEPS
    lr: float = DEFAULT_LR
    batch: int = 16
    crop: int = 96


@dataclass(frozen=True)
class QatRun:
    model: nn.Module  # plain, fake quantization stripped
    losses: tuple[float, ...]
    seconds: float


def _loss_fn(name: ModelName) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor],
                                           torch.Tensor]:
    """Train.py's loss: L1 to the ground truth; style_student adds L1 to its teacher's output
    (the distillation's output term; its feature adapters were dropped after training)."""
    teacher = fast_style.build(pretrained=True) if name is ModelName.STYLE_STUDENT else None

    def loss(model: nn.Module, inputs: tuple[torch.Tensor, ...],
             target: torch.Tensor) -> torch.Tensor:
        output = model(*inputs)
        value = F.l1_loss(output, target)
        if teacher is not None:
            with torch.no_grad():
                teacher_output = teacher(*inputs)
            value = value + F.l1_loss(output, teacher_output)
        return value
    return loss


def fine_tune(cfg: QatConfig, model: nn.Module, log: Callable[[str], None] = print,
              fake_quant: bool = True) -> QatRun:
    """Fake-quantize `model`, calibrate its ranges, fine-tune `cfg.steps` steps, strip.

    fake_quant=False is the control: the same batches, loss and schedule without rounding,
    so that what QAT adds can be told from what the extra fine-tuning alone gives."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED + 1)  # other crops than the fp32 training's first ones
    module = MODULES[cfg.name]
    next_batch = batches_for(TrainConfig(name=cfg.name, steps=cfg.steps, device=Device.CPU,
                                         batch=cfg.batch, crop=cfg.crop), rng)
    quantized = insert_fake_quant(model, module) if fake_quant else FakeQuantized(model)
    model.train()
    freeze_batch_norm(model)
    quantized.set_rounding(False)  # ranges first from the fp32 model's own activations
    with torch.no_grad():
        for _ in range(CALIBRATION_BATCHES):
            model(*next_batch()[0])
    quantized.set_rounding(fake_quant)
    loss_fn = _loss_fn(cfg.name)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.steps)
    losses: list[float] = []
    started = time.perf_counter()
    for step in range(cfg.steps):
        if step == int(cfg.steps * FREEZE_AT):
            quantized.set_observing(False)
        inputs, target = next_batch()
        loss = loss_fn(model, inputs, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % max(1, cfg.steps // 10) == 0 or step == cfg.steps - 1:
            log(f"{cfg.name} qat step {step + 1}/{cfg.steps} loss {losses[-1]:.4f}")
    seconds = time.perf_counter() - started
    return QatRun(quantized.strip().eval(), tuple(losses), seconds)


@torch.no_grad()
def fake_quant_quality(name: ModelName, model: nn.Module) -> metrics.Quality:
    """Held-out quality of `model` under fake quantization (a copy; ranges from 8 batches)."""
    module = MODULES[name]
    copy = module.build(pretrained=False)
    copy.load_state_dict(model.state_dict())
    quantized = insert_fake_quant(copy, module)
    next_batch = batches_for(TrainConfig(name=name, steps=1, device=Device.CPU),
                             np.random.default_rng(SEED + 2))
    quantized.set_rounding(False)
    for _ in range(CALIBRATION_BATCHES):
        copy.eval()(*next_batch()[0])
    quantized.set_observing(False)
    quantized.set_rounding(True)
    return metrics.heldout_quality(copy, module.TASK, module.OUTPUT_RANGE.low)


def run(cfg: QatConfig) -> dict[str, object]:
    module = MODULES[cfg.name]
    base = load_pretrained(cfg.name.value, module.build(pretrained=False))
    before = fake_quant_quality(cfg.name, base)
    tuned = fine_tune(cfg, base)
    # a fresh module: the state_dict in the factory's own key order, as train.py saves it
    plain = module.build(pretrained=False)
    plain.load_state_dict(tuned.model.state_dict())
    result = QatRun(plain, tuned.losses, tuned.seconds)
    quality = metrics.heldout_quality(result.model, module.TASK, module.OUTPUT_RANGE.low)
    after = fake_quant_quality(cfg.name, result.model)
    name = qat_name(cfg.name.value)
    digest = save_weights(name, result.model)
    record = {"name": name, "base": cfg.name.value, "steps": cfg.steps, "device": "cpu",
              "batch": cfg.batch, "crop": cfg.crop, "lr": cfg.lr, "seed": SEED,
              "seconds": round(result.seconds, 1), "first_loss": round(result.losses[0], 4),
              "final_loss": round(result.losses[-1], 4),
              "heldout_psnr": round(quality.psnr, 2), "heldout_ssim": round(quality.ssim, 4),
              "fake_quant_psnr_before": round(before.psnr, 2),
              "fake_quant_psnr_after": round(after.psnr, 2),
              "sha256": digest, "torch": torch.__version__}
    path = record_path(name)
    atomic_write_json(path, record)
    print(f"{name}: held-out PSNR {quality.psnr:.2f} dB, SSIM {quality.ssim:.4f} (fp32); "
          f"fake-quant PSNR {before.psnr:.2f} -> {after.psnr:.2f} dB; "
          f"{result.seconds:.0f} s, sha256 {digest}")
    return record


def record_control(name: ModelName, weights: Path, steps: int) -> dict[str, object]:
    """Score control weights (fp32, and tflite-int8 through the card's export) and keep the
    figures in the `<name>_qat` run record, where the model card shows them beside QAT's."""
    from mobilize.models import card  # the card imports this module

    module = MODULES[name]
    model = module.build(pretrained=False)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    quality = metrics.heldout_quality(model, module.TASK, module.OUTPUT_RANGE.low)
    int8 = card.measure_int8(name.value, module, model, model_ref=f"mobilize.models.{name}:build",
                             weights=weights)
    control: dict[str, object] = {
        "command": f"python -m mobilize.models.qat {name} --steps {steps} --control OUT.pt",
        "steps": steps, "heldout_psnr": round(quality.psnr, 2),
        "heldout_ssim": round(quality.ssim, 4),
        "int8_psnr": round(int8.quality.psnr, 2) if int8.quality else None,
        "int8_ssim": round(int8.quality.ssim, 4) if int8.quality else None}
    path = record_path(qat_name(name.value))
    if path.exists():
        record = json.loads(path.read_text())
        record["control"] = control
        atomic_write_json(path, record)
    return control


def run_control(cfg: QatConfig, out: Path) -> None:
    """The same fine-tuning without fake quantization, written to `out` (not the manifest)."""
    module = MODULES[cfg.name]
    base = load_pretrained(cfg.name.value, module.build(pretrained=False))
    result = fine_tune(cfg, base, fake_quant=False)
    torch.save(result.model.state_dict(), out)
    control = record_control(cfg.name, out, cfg.steps)
    print(f"{cfg.name} control (no fake quant): held-out PSNR {control['heldout_psnr']} dB, "
          f"tflite-int8 {control['int8_psnr']} dB; {result.seconds:.0f} s; weights {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mobilize.models.qat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", type=ModelName, choices=list(ModelName))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the machine is shared)")
    parser.add_argument("--control", type=Path, metavar="OUT.pt", default=None,
                        help="fine-tune the same way without fake quantization, write the "
                             "weights to OUT.pt only (what the extra training alone gives) and "
                             "their fp32/int8 figures into the <NAME>_qat record")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    torch.set_num_threads(args.threads)
    try:
        config = QatConfig(name=args.name, steps=args.steps, lr=args.lr, batch=args.batch,
                           crop=args.crop)
        if args.control is not None:
            run_control(config, args.control)
        else:
            run(config)
    except MobilizeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
