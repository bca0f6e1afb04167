"""What a `--finetune` run gives back: the fine-tuned float model and its figures.

`Finetuned` holds the student with its fake quantization stripped (what the ONNX export
reads) and writes finetuned.pt, the weights the .tflite and model.onnx were converted from;
`FinetuneReport` is metadata.json's `finetune` entry. A module of its own so that the imports
run one way: the training loop (exporter/finetune.py) builds these, the pipeline's stage
(exporter/finetune_stage.py) and the pipeline read and write them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobilize.contract import files as artifacts
from mobilize.exporter.model_loader import LoadedModel

FINETUNED_FILE = "finetuned.pt"
VERIFIED_AGAINST = ("the original fp32 model (the teacher); the .tflite and model.onnx come "
                    "from the fine-tuned weights in " + FINETUNED_FILE)


@dataclass(frozen=True)
class FinetuneReport:
    steps: int  # asked for
    steps_run: int  # fewer when interrupted
    seconds: float
    device: str
    lr: float
    batch: int
    first_loss: float | None
    final_loss: float | None
    best_step: int  # 0: no step improved on the start
    train_samples: int
    validation_samples: int
    validation_snr_db_before: float
    validation_snr_db_after: float  # of the weights exported
    validation_snr_db_best_seen: float  # the best state's, kept only MIN_GAIN_DB above before
    float_snr_db_after: float  # the fine-tuned fp32 weights vs the teacher (no rounding)
    rounding_points: int  # activation tensors rounded in the student
    interrupted: bool
    loss: str  # "mse" or "l1"
    equalized_convs: int  # convolutions rescaled before fine-tuning
    history: tuple[tuple[int, float, float], ...]  # (step, loss, validation SNR dB)
    skipped: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def rounded(value: float | None, digits: int = 3) -> float | None:
            return None if value is None or not math.isfinite(value) else round(value, digits)

        return {
            "steps": self.steps, "steps_run": self.steps_run,
            "seconds": round(self.seconds, 1), "device": self.device, "lr": self.lr,
            "batch": self.batch,
            "loss": (f"{self.loss} to the original model's output over its "
                     f"{'variance' if self.loss == 'mse' else 'std'} (first/final: mean over "
                     "a tenth of the steps)"),
            "first_loss": rounded(self.first_loss, 5), "final_loss": rounded(self.final_loss, 5),
            "best_step": self.best_step, "train_samples": self.train_samples,
            "validation_samples": self.validation_samples,
            "validation_snr_db": {"before": rounded(self.validation_snr_db_before, 2),
                                  "after": rounded(self.validation_snr_db_after, 2),
                                  "best_seen": rounded(self.validation_snr_db_best_seen, 2),
                                  "float_after": rounded(self.float_snr_db_after, 2),
                                  "note": "fake-quantized PyTorch student against the original "
                                  "fp32 model on calibration samples held out of training"},
            "rounding_points": self.rounding_points, "interrupted": self.interrupted,
            "equalized_convs": self.equalized_convs,
            "history": [[step, rounded(loss, 5), rounded(snr, 2)]
                        for step, loss, snr in self.history],
            "not_modelled": list(self.skipped),
        }


@dataclass(frozen=True)
class Finetuned:
    """The fine-tuned float model (fake quantization stripped) and how it got there."""

    module: nn.Module
    report: FinetuneReport

    def exported(self, loaded: LoadedModel) -> LoadedModel:
        """What the ONNX export reads: the student, with the loaded model's specs."""
        return replace(loaded, module=self.module)

    def state_dict_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(self.module.state_dict(), buffer)
        return buffer.getvalue()

    def write(self, folder: Path) -> dict[str, Any]:
        """Write finetuned.pt into `folder`; metadata.json's `finetune` entry."""
        content = self.state_dict_bytes()
        artifacts.atomic_write_bytes(folder / FINETUNED_FILE, content)
        return {"file": FINETUNED_FILE, "sha256": artifacts.sha256_bytes(content),
                "verified_against": VERIFIED_AGAINST, **self.report.to_json()}
