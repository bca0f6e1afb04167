"""`--finetune` keeps its weights only where the real int8 file beats post-training int8.

The fake-quantized student's validation gain does not always carry over to LiteRT's
kernels: a briefly trained pix2pix UNet at 64x64 gained +0.6 dB in the simulation and lost
1.1 dB in the .tflite (docs/benchmarks.md, "int8 with quantization-aware fine-tuning"). So a
fine-tuned export is followed by the same export of the user's own weights, and both int8
files are scored against the original model on the calibration photographs held out of
training (split_by_photo: crops of a trained-on photo share its pixels; never the
verification photos, whose figures stay honest). The fine-tuned file is kept only when it
leads by KEEP_MARGIN_DB: a pix2pix UNet's fine-tuned file led by 0.5 dB on crops of the
training photos and trailed by 1.1 dB on the verification photos.

Both files' figures on the verification photos are reported beside the choice, never used
for it: where the calibration photos do not stand for them (a trained AnimeGAN at 128x128:
the fine-tuned file led 26.8 to 24.5 dB on the held-out calibration photos and trailed 13.9
to 15.9 on the verification photos), the export warns with both figures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilize.contract import files as artifacts
from mobilize.errors import ConversionError
from mobilize.exporter import preflight
from mobilize.exporter.calibration import SampleSet
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.finetune_report import Finetuned
from mobilize.exporter.model_loader import LoadedModel
from mobilize.exporter.verify import verify

if TYPE_CHECKING:  # the pipeline imports this module
    from mobilize.exporter.pipeline import ExportResult, ProgressListener

POST_TRAINING_FOLDER = "post_training"  # inside the export's work folder
# The fine-tuned file must lead the post-training one by this much on the held-out photos:
# a few crops rank files that close at random, and a tie keeps the user's own weights.
KEEP_MARGIN_DB = 0.5


@dataclass(frozen=True)
class RealFileCheck:
    """Both int8 files against the original model on the held-out calibration samples."""

    finetuned_snr_db: float
    post_training_snr_db: float
    samples: int
    # the same two files on the export's verification photos: reported, not chosen on
    finetuned_verified_snr_db: float | None = None
    post_training_verified_snr_db: float | None = None

    @property
    def keeps_finetuned(self) -> bool:
        return self.finetuned_snr_db >= self.post_training_snr_db + KEEP_MARGIN_DB

    def to_json(self) -> dict[str, Any]:
        return {"finetuned_int8_snr_db": round(self.finetuned_snr_db, 2),
                "post_training_int8_snr_db": round(self.post_training_snr_db, 2),
                "samples": self.samples, "kept": "finetuned" if self.keeps_finetuned
                else "post_training",
                "margin_db": KEEP_MARGIN_DB,
                "note": "the real .tflite files against the original fp32 model on the "
                "calibration photographs held out of training; the fine-tuned file is kept "
                "when it leads by margin_db",
                "verification_snr_db": {
                    "finetuned": _rounded(self.finetuned_verified_snr_db),
                    "post_training": _rounded(self.post_training_verified_snr_db),
                    "note": "both files on the verification photos: reported, never chosen "
                    "on"}}

    @property
    def trails_on_verification(self) -> bool:
        """The kept fine-tuned file scores below post-training int8 on the verification
        photos: the held-out calibration photos did not stand for them."""
        return (self.keeps_finetuned and self.finetuned_verified_snr_db is not None
                and self.post_training_verified_snr_db is not None
                and self.finetuned_verified_snr_db < self.post_training_verified_snr_db)

    def verification_warning(self, steps: int) -> str:
        return (f"--finetune {steps}: the fine-tuned int8 file is written (it led "
                f"{self.finetuned_snr_db:.1f} to {self.post_training_snr_db:.1f} dB SNR on "
                f"the calibration photos held out of training), but on the verification "
                f"photos it keeps {self.finetuned_verified_snr_db:.1f} dB and post-training "
                f"int8 of your weights {self.post_training_verified_snr_db:.1f} dB: your "
                "calibration photos may not stand for the pictures your app will see; "
                "export again without --finetune, or with --calib-dir photos like theirs")

    def line(self) -> str:
        kept = "fine-tuned" if self.keeps_finetuned else "post-training"
        return (f"validation SNR fine-tuned {self.finetuned_snr_db:.1f} dB, post-training "
                f"{self.post_training_snr_db:.1f} dB: the {kept} file is written")

    def warning(self, steps: int) -> str:
        return (f"--finetune {steps}: the fine-tuned int8 file kept "
                f"{self.finetuned_snr_db:.1f} dB SNR against your model on the calibration "
                f"photos held out of training, post-training int8 of your own weights "
                f"{self.post_training_snr_db:.1f} dB (it must lead by {KEEP_MARGIN_DB} dB); "
                "the post-training file is written and "
                "finetuned.pt is not. More steps, --finetune-device cuda or another loss may "
                "still help; the figures are in metadata.json `finetune`")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def validation_snr_db(loaded: LoadedModel, content: bytes, validation: SampleSet) -> float:
    """The worst output's SNR of `content` against the user's model on `validation`."""
    figures, _, _ = verify(loaded.module, content, validation, loaded.inputs,
                           loaded.output_names, loaded.output_range)
    return figures.worst_snr_db


def compare_with_post_training(run_plain: Callable[[ExportConfig], ExportResult],
                               config: ExportConfig, loaded: LoadedModel,
                               validation: SampleSet, finetuned_int8: bytes, work: Path,
                               progress: ProgressListener,
                               finetuned_verified_snr_db: float | None = None,
                               ) -> tuple[RealFileCheck, ExportResult] | None:
    """Export the user's own weights into the work folder with `run_plain`, score both int8
    files on `validation`; None when the plain export has no int8 file to compare."""
    start = time.perf_counter()
    plain_config = replace(config, finetune_steps=0, int8_alternatives=False, min_psnr=None,
                           out_dir=work / POST_TRAINING_FOLDER)
    try:
        plain = run_plain(plain_config)
    except ConversionError as error:  # the user's own weights do not convert: keep ours
        progress.warn(f"post-training int8 of your weights, to compare: {error.message}")
        return None
    plain_int8 = next((t for t in plain.targets if t.target is Target.INT8 and t.file), None)
    if plain_int8 is None or plain_int8.file is None:
        return None
    check = RealFileCheck(
        validation_snr_db(loaded, finetuned_int8, validation),
        validation_snr_db(loaded, (plain.out_dir / plain_int8.file).read_bytes(), validation),
        validation.count, finetuned_verified_snr_db,
        plain_int8.verification.worst_snr_db if plain_int8.verification else None)
    progress.stage_finished(6, "  vs post-training int8", time.perf_counter() - start,
                            check.line())
    return check, plain


def post_training_instead(config: ExportConfig, plain: ExportResult, finetuned: Finetuned,
                          check: RealFileCheck) -> ExportResult:
    """The post-training export as the result: its files, its metadata with the fine-tuning's
    figures and why its weights were not kept."""
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(plain.out_dir.iterdir()):
        if path.is_file() and path.name != plain.metadata_path.name:
            artifacts.atomic_write_bytes(out / path.name, path.read_bytes())
    metadata = json.loads(plain.metadata_path.read_text())
    warning = check.warning(finetuned.report.steps)
    metadata["warnings"] = [*metadata["warnings"], warning]
    metadata["finetune"] = {"file": None, **finetuned.report.to_json(),
                            "real_file_check": check.to_json()}
    metadata_path = preflight.replace_metadata(out, metadata)
    return replace(plain, out_dir=out, metadata_path=metadata_path, onnx_path=out / "model.onnx",
                   warnings=(*plain.warnings, warning))
