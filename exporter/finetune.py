"""`--finetune STEPS`: label-free quantization-aware fine-tuning before a tflite-int8 export.

The teacher is the user's fp32 model, frozen; the student a deep copy with fake quantization
where the int8 file rounds (exporter/fake_quant.py: per-channel int8 weights, per-tensor int8
activations with the exporter's ranges, TFLite's fixed scales, every step of the decomposed
InstanceNorm / GroupNorm). Before training, each convolution feeding an InstanceNorm is
rescaled per output channel (exact up to eps), so its one int8 scale serves every channel.
The data are the calibration samples the export already builds (random resized crops and
flips of them); the loss is the student's mean squared error to the teacher's output, over
the teacher's output variance (1/SNR). Whole photographs, about a quarter of the samples
(tflite_convert.split_by_photo), are held out of training and give the
validation SNR after every tenth of the steps (ranges recalibrated first); the best state is
kept, Ctrl-C stops training with it, and a gain under MIN_GAIN_DB keeps the user's weights
untouched. The fake quantization is then stripped: the ONNX and .tflite files come from the
fine-tuned float weights (the int8 path recalibrates their ranges), while verification still
compares against the user's original model.

This module is the training loop (`finetune_model`) and the constants it runs on. What it
returns, and finetuned.pt, are exporter/finetune_report.py's; the pipeline's stage around
it (checks, progress lines, warnings) is exporter/finetune_stage.py.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mobilize.contract.specs import InputSpec
from mobilize.exporter.calibration import SampleSet
from mobilize.exporter.fake_quant import FakeQuantModel, insert_fake_quant
from mobilize.exporter.fake_quant_equalize import equalize_before_instance_norm
from mobilize.exporter.finetune_report import Finetuned, FinetuneReport
from mobilize.exporter.int8_ranges import DEFAULT_QUANTILE_CHOICES
from mobilize.exporter.tflite_convert import split_by_photo

DEFAULT_LR = 1e-4
DEFAULT_BATCH = 4
EVALUATIONS = 10  # validation (and range recalibration) points over the run
CROP_SCALE = (0.6, 1.0)  # side of a random crop, as a share of the sample's, resized back
SEED = 0
# Adam's first steps move every weight by about lr whatever its gradient (a trained
# CycleGAN's fake-quant validation SNR fell 20.3 -> 17.8 dB in 3 steps, 18.6 with this
# warm-up; the best state is kept, so a dip costs nothing but steps)
WARMUP = 0.1
GRADIENT_CLIP = 1.0  # global gradient norm: STE through RSQRT of a tiny variance is steep
# the exporter's --int8-ranges auto candidates (int8_ranges.DEFAULT_QUANTILE_CHOICES and
# min/max, here 1.0)
RANGE_CANDIDATES = (*DEFAULT_QUANTILE_CHOICES, 1.0)
# The fine-tuned weights are exported only when their validation SNR beats the start by this
# much: on a random-init CycleGAN 200 steps "gained" 0.09 dB on 8 validation crops while its
# float output drifted to 17.8 dB SNR from the original, and the real int8 file lost 0.6 dB.
MIN_GAIN_DB = 0.5
# Before fine-tuning, each convolution feeding an InstanceNorm is rescaled per channel
# (fake_quant_equalize.equalize_before_instance_norm; exact up to eps). Alone it moved the int8
# SNR of the trained CycleGAN / Johnson nets -0.3 / +0.9 dB, but fine-tuning only carried over
# to the real int8 files after it (docs/benchmarks.md, "int8 with quantization-aware
# fine-tuning").
EQUALIZE = True
EQUALIZE_MIN_SNR_DB = 40.0  # float output of the rescaled student against the teacher


class Progress(Protocol):
    """What a fine-tuning run reports: one line per validation point."""

    def __call__(self, step: int, steps: int, loss: float, snr_db: float, best_db: float,
                 seconds: float) -> None: ...


def _batches(arrays: Sequence[np.ndarray], indices: Sequence[int], batch: int,
             device: torch.device) -> Iterator[tuple[torch.Tensor, ...]]:
    for start in range(0, len(indices), batch):
        chosen = list(indices[start:start + batch])
        yield tuple(torch.from_numpy(a[chosen]).to(device) for a in arrays)


def _augment(x: torch.Tensor, rng: np.random.Generator,
             crop_scale: tuple[float, float] = CROP_SCALE) -> torch.Tensor:
    """Random resized crop (a side of 0.6-1.0 of the sample's) and horizontal flip, per
    sample; bilinear resampling keeps values inside the input's range."""
    if x.dim() != 4 or x.shape[2] < 8 or x.shape[3] < 8:
        return x
    height, width = x.shape[2:]
    out = []
    for sample in x:
        side = rng.uniform(*crop_scale)
        h, w = max(2, round(height * side)), max(2, round(width * side))
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        crop = sample[None, :, top:top + h, left:left + w]
        if (h, w) != (height, width):
            crop = F.interpolate(crop, size=(height, width), mode="bilinear",
                                 align_corners=False)
        if rng.random() < 0.5:
            crop = crop.flip(3)
        out.append(crop)
    return torch.cat(out)


def _outputs(result: object) -> tuple[torch.Tensor, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)  # type: ignore[arg-type]


def _loss(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...],
          scales: Sequence[float], kind: str) -> torch.Tensor:
    """Mean squared (or absolute) error to the teacher over the teacher's output variance (or
    std) on the training samples: a fixed scale, so that every batch counts as much as its
    error does in the validation SNR."""
    terms = [(F.mse_loss(s, t) if kind == "mse" else F.l1_loss(s, t)) / scale
             for s, t, scale in zip(student, teacher, scales, strict=True)]
    return torch.stack(terms).mean()


@torch.no_grad()
def snr_db(model: nn.Module, teacher_outputs: Sequence[tuple[torch.Tensor, ...]],
           batches: Sequence[tuple[torch.Tensor, ...]]) -> float:
    """Worst output's SNR (variance over mean squared error, as verify.compare) of `model`
    against the teacher's outputs on `batches`."""
    got = [_outputs(model(*batch)) for batch in batches]
    worst = math.inf
    for index in range(len(teacher_outputs[0])):
        want = torch.cat([t[index] for t in teacher_outputs]).double()
        have = torch.cat([g[index] for g in got]).double()
        mse = float(((have - want) ** 2).mean())
        signal = float(want.var(unbiased=False))
        worst = min(worst, 10 * math.log10(signal / mse) if mse > 0 and signal > 0 else math.inf)
    return worst


def finetune_model(teacher: nn.Module, inputs: Sequence[InputSpec], samples: SampleSet,
                   steps: int, *, device: str = "cpu", lr: float = DEFAULT_LR,
                   batch: int = DEFAULT_BATCH, seed: int = SEED, loss: str = "mse",
                   crop_scale: tuple[float, float] = CROP_SCALE, range_choice: str = "teacher",
                   progress: Progress | None = None) -> Finetuned:
    """Fine-tune a fake-quantized copy of `teacher` (left untouched) towards its own output
    on `samples` (each input's NCHW array in its declared range)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    target = torch.device(device)
    train, validation = split_by_photo(samples)
    validation = validation or train  # too few samples to hold any out
    names = [spec.name for spec in inputs]
    train_arrays = [train.arrays[n].astype(np.float32) for n in names]
    val_arrays = [validation.arrays[n].astype(np.float32) for n in names]
    ranges = [None if spec.value_range.mean is not None
              else (spec.value_range.low, spec.value_range.high) for spec in inputs]

    frozen = teacher if target.type == "cpu" else copy.deepcopy(teacher).to(target)
    frozen.eval()
    student = copy.deepcopy(teacher).to(target).eval()  # eval: BatchNorm frozen, no dropout
    for parameter in student.parameters():
        parameter.requires_grad_(parameter.is_floating_point())
    example = next(_batches(train_arrays, [0], 1, target))
    original_state = copy.deepcopy(student.state_dict())
    equalized = _equalize(student, frozen, train_arrays, target) if EQUALIZE else 0
    quantized: FakeQuantModel = insert_fake_quant(student, example, ranges)
    points = quantized.rounding_points()
    train_order = list(range(train.count))
    val_batches = list(_batches(val_arrays, list(range(validation.count)), batch, target))
    with torch.no_grad():
        val_teacher = [_outputs(frozen(*b)) for b in val_batches]
        train_teacher = [_outputs(frozen(*b))
                         for b in _batches(train_arrays, train_order, batch, target)]
    scales = []
    for index in range(len(train_teacher[0])):
        spread = torch.cat([t[index] for t in train_teacher]).double()
        scales.append(float(spread.var() if loss == "mse" else spread.std()) or 1.0)

    def recalibrate() -> float:
        """Ranges of the current weights as the exporter takes them (calibrated on the
        training samples, each of `--int8-ranges auto`'s candidates), one of them kept, and
        the validation SNR against the teacher with it. range_choice "teacher" (default):
        the candidate closest to the teacher; "exporter": the one closest to the student's
        own float output, as auto chooses in the real file; "jitter": each step draws a
        candidate, the SNR is their mean. Measured on trained CycleGAN / Johnson, int8 SNR
        of the real file after 200 steps (no equalization): teacher +2.0 / +0.0 dB,
        exporter - / -1.7, jitter +0.3 / +1.5 (the simulation does not rank the candidates
        as LiteRT's kernels do, so the student can learn for ranges the file will not
        have)."""
        quantized.calibrate(_batches(train_arrays, train_order, batch, target))
        quantized.set_rounding(False)
        own = [_outputs(student(*b)) for b in val_batches] if range_choice == "exporter" \
            else val_teacher
        quantized.set_rounding(True)
        found, closeness = {}, {}
        for quantile in RANGE_CANDIDATES:
            quantized.settle(quantile)
            found[quantile] = snr_db(student, val_teacher, val_batches)
            closeness[quantile] = snr_db(student, own, val_batches)
        chosen = max(closeness, key=lambda q: closeness[q])
        quantized.settle(chosen)
        return float(np.mean(list(found.values()))) if range_choice == "jitter" \
            else found[chosen]

    quantized.set_rounding(True)
    before = recalibrate()
    best_db, best_step = before, 0
    best_state = copy.deepcopy(student.state_dict())
    start_state = best_state
    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=lr)
    warmup = max(1, round(steps * WARMUP))

    def lr_factor(done: int) -> float:  # linear warm-up, then cosine to zero
        if done < warmup:
            return (done + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (done - warmup) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    every = max(1, math.ceil(steps / EVALUATIONS))
    losses: list[float] = []
    history: list[tuple[int, float, float]] = []
    interrupted = False
    started = time.perf_counter()
    try:
        for step in range(1, steps + 1):
            chosen = rng.integers(0, train.count, size=batch)
            if range_choice == "jitter":  # robust to whichever candidate auto picks
                quantized.settle(float(rng.choice(RANGE_CANDIDATES)))
            feeds = tuple(_augment(torch.from_numpy(a[chosen]).to(target), rng, crop_scale)
                          for a in train_arrays)
            with torch.no_grad():
                wanted = _outputs(frozen(*feeds))
            value = _loss(_outputs(student(*feeds)), wanted, scales, loss)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if math.isfinite(value.item()):  # a batch that overflowed teaches nothing
                torch.nn.utils.clip_grad_norm_(trainable, GRADIENT_CLIP)
                optimizer.step()
            schedule.step()
            losses.append(value.item())
            if step % every == 0 or step == steps:
                current = recalibrate()  # the exporter recalibrates: follow the weights
                recent = float(np.mean(losses[-every:]))
                history.append((step, recent, current))
                if current > best_db:
                    best_db, best_step = current, step
                    best_state = copy.deepcopy(student.state_dict())
                if progress is not None:
                    progress(step, steps, recent, current, best_db,
                             time.perf_counter() - started)
    except KeyboardInterrupt:  # Ctrl-C: stop here and export the best state so far
        interrupted = True
    seconds = time.perf_counter() - started
    best_seen = best_db
    if best_db < before + MIN_GAIN_DB:  # within the validation's noise: keep the original
        best_state, best_db, best_step = start_state, before, 0
    student.load_state_dict(best_state)
    plain = quantized.strip().eval()
    if best_step == 0:  # no gain: the user's weights as they were, not even rescaled
        plain.load_state_dict(original_state)
    float_after = snr_db(plain, val_teacher, val_batches)
    plain = plain.cpu()
    for parameter in plain.parameters():
        parameter.requires_grad_(False)
    report = FinetuneReport(
        steps=steps, steps_run=len(losses), seconds=seconds, device=device, lr=lr,
        batch=batch, first_loss=history[0][1] if history else None,
        final_loss=history[-1][1] if history else None, best_step=best_step,
        train_samples=train.count,
        validation_samples=validation.count if validation is not train else 0,
        validation_snr_db_before=before, validation_snr_db_after=best_db,
        validation_snr_db_best_seen=best_seen,
        float_snr_db_after=float_after, rounding_points=points,
        interrupted=interrupted, loss=loss, equalized_convs=equalized, history=tuple(history),
        skipped=tuple(quantized.skipped))
    return Finetuned(plain, report)


def _equalize(student: nn.Module, teacher: nn.Module, arrays: Sequence[np.ndarray],
              device: torch.device) -> int:
    """fake_quant_equalize.equalize_before_instance_norm on the student, undone unless its float
    output stays within EQUALIZE_MIN_SNR_DB of the teacher's on the training samples."""
    every = list(range(len(arrays[0])))
    batches = list(_batches(arrays, every, DEFAULT_BATCH, device))
    before = copy.deepcopy(student.state_dict())
    changed = equalize_before_instance_norm(student, batches)
    with torch.no_grad():
        wanted = [_outputs(teacher(*b)) for b in batches]
    if changed and snr_db(student, wanted, batches) < EQUALIZE_MIN_SNR_DB:
        student.load_state_dict(before)  # a reader the trace did not see: not exact
        return 0
    return changed


def log_to(write: Callable[[str], None]) -> Progress:
    """A Progress printing one line per validation point (benchmarks, scripts)."""

    def report(step: int, steps: int, loss: float, snr: float, best: float,
               seconds: float) -> None:
        write(f"step {step}/{steps} loss {loss:.4f} validation SNR {snr:.2f} dB "
              f"(best {best:.2f}) {seconds:.0f} s")

    return report
