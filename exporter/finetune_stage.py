"""The pipeline's `--finetune` step around the training loop of exporter/finetune.py.

`check_finetunable` refuses what cannot be fine-tuned (a model that is not Python code, CUDA
asked for where torch sees none); `finetune_stage` builds the calibration samples as stage 5
builds them, runs the loop, prints a line per validation point and warns when the run was
interrupted or gained too little (then the original weights are exported).
"""

from __future__ import annotations

from typing import Protocol

import torch

from mobilize.errors import UsageError
from mobilize.exporter.calibration import build_representative_data
from mobilize.exporter.config import ExportConfig
from mobilize.exporter.finetune import MIN_GAIN_DB, finetune_model
from mobilize.exporter.finetune_report import Finetuned
from mobilize.exporter.model_loader import LoadedModel


def check_finetunable(loaded: LoadedModel, device: str) -> None:
    if loaded.kind not in ("factory", "module") or isinstance(loaded.module,
                                                               torch.jit.ScriptModule):
        raise UsageError(
            f"--finetune needs the model as Python code, not a {loaded.kind} file: the "
            "student replaces its InstanceNorm/GroupNorm modules and trains its weights",
            hint="export from the factory (path/to/file.py:build --weights gen.pth)")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--finetune-device cuda: this torch sees no CUDA device",
                         hint="use --finetune-device cpu")


class ProgressListenerLike(Protocol):
    """pipeline.ProgressListener (not imported: the pipeline imports this module)."""

    def stage_started(self, number: int, name: str) -> None: ...
    def stage_finished(self, number: int, name: str, seconds: float, detail: str) -> None: ...
    def warn(self, message: str) -> None: ...


def finetune_stage(config: ExportConfig, loaded: LoadedModel,
                   progress: ProgressListenerLike) -> Finetuned | None:
    """The pipeline's fine-tuning step (None without --finetune): the calibration samples
    are built as stage 5 builds them (same sources, same seeds, so the same samples)."""
    if not config.finetune_steps:
        return None
    check_finetunable(loaded, config.finetune_device)
    steps = config.finetune_steps
    name = f"quantization-aware fine-tuning, {steps} steps on {config.finetune_device}"
    progress.stage_started(1, name)
    data = build_representative_data(loaded.inputs, config.calib_sources,
                                     config.calib_samples, config.verify_samples, True)

    def report(step: int, total: int, loss: float, snr: float, best: float,
               seconds: float) -> None:
        progress.stage_finished(1, f"  fine-tune step {step}/{total}", seconds,
                                f"loss {loss:.4f}, validation SNR {snr:.1f} dB "
                                f"(best {best:.1f} dB, fake-quant vs original)")

    tuned = finetune_model(loaded.module, loaded.inputs, data.calibration, steps,
                           device=config.finetune_device, progress=report)
    found = tuned.report
    if found.interrupted:
        progress.warn(f"fine-tuning interrupted after {found.steps_run} of {steps} steps; "
                      f"exporting the best state (step {found.best_step})")
    if found.best_step == 0:
        progress.warn(
            f"fine-tuning did not raise the fake-quantized validation SNR by {MIN_GAIN_DB:g} dB "
            f"(start {found.validation_snr_db_before:.1f}, best "
            f"{found.validation_snr_db_best_seen:.1f} dB); the original weights are exported")
    progress.stage_finished(
        1, "quantization-aware fine-tuning", found.seconds,
        f"validation SNR {found.validation_snr_db_before:.1f} -> "
        f"{found.validation_snr_db_after:.1f} dB (fake-quant vs original), best step "
        f"{found.best_step}/{found.steps_run}")
    return tuned
