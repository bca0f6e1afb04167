"""The host side of the on-phone quality gate: what the phone's output is held against.

PyTorch's fp32 outputs for held-out inputs (the model rebuilt from the export folder's
metadata.json, the inputs from --quality-images or the exporter's own held-out photographs),
the .tflite's input and output formats (so inputs go to the phone in its layout and dtype and
outputs come back dequantized), and the figures of the phone's outputs against PyTorch's
(PSNR, SSIM, max abs error per image; worst and pooled PSNR over them).

Nothing here touches a device: the reference is computed before any device is, and the
figures are plain arithmetic on arrays, so both are tested on this machine alone. The pass on
the phone and the gate on its figures are in quality.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilize.contract.metadata import METADATA_FILE, is_export_folder, read_metadata
from mobilize.contract.reference import image_figures, rebuild_reference
from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.contract.tflite_runner import TensorFormat, tensor_formats
from mobilize.device.errors import ModelError
from mobilize.errors import UsageError

DEFAULT_QUALITY_SAMPLES = 3


@dataclass(frozen=True)
class QualityReference:
    """Held-out inputs (NCHW, the input's value range) and PyTorch's fp32 outputs for them."""

    source: str
    input_spec: InputSpec
    inputs: np.ndarray
    output_name: str
    reference: np.ndarray
    output_range: ValueRange | None

    @property
    def count(self) -> int:
        return int(self.inputs.shape[0])

    def file_names(self) -> list[str]:
        return [f"q{index:03d}.npy" for index in range(self.count)]


@dataclass(frozen=True)
class ImageFigures:
    file: str
    psnr_db: float | None  # None: identical to PyTorch
    ssim: float | None
    max_abs_error: float


@dataclass(frozen=True)
class QualityResult:
    images: tuple[ImageFigures, ...]
    outputs: np.ndarray  # dequantized NCHW outputs of the phone

    @property
    def worst_psnr_db(self) -> float:
        values = [i.psnr_db if i.psnr_db is not None else math.inf for i in self.images]
        return min(values) if values else math.nan

    @property
    def pooled_psnr_db(self) -> float:
        """PSNR of the squared error pooled over all images (as the export's `psnr_db`): the
        images have one shape, so the pooled MSE is the mean of theirs."""
        return pooled_psnr([i.psnr_db for i in self.images])

    @property
    def mean_ssim(self) -> float | None:
        values = [i.ssim for i in self.images if i.ssim is not None]
        return float(np.mean(values)) if values else None

    @property
    def max_abs_error(self) -> float:
        return max((i.max_abs_error for i in self.images), default=math.nan)


def pooled_psnr(image_psnrs: Sequence[float | None]) -> float:
    """The PSNR of the pooled error from per-image PSNRs of one data range (None: identical):
    -10 log10(mean(10^(-psnr/10)))."""
    if not image_psnrs:
        return math.nan
    relative = [0.0 if p is None or not math.isfinite(p) else 10 ** (-p / 10) for p in image_psnrs]
    mean = sum(relative) / len(relative)
    return -10 * math.log10(mean) if mean > 0 else math.inf


# ------------------------------------------------------------------- host-side reference


def export_folder_of(model_path: Path) -> Path:
    """The export folder a model belongs to: itself, or the .tflite's folder."""
    folder = model_path if model_path.is_dir() else model_path.parent
    if not is_export_folder(folder):
        raise ModelError(
            f"the quality gate needs the PyTorch model, and {folder} has no {METADATA_FILE} "
            "naming it",
            hint="bench an export folder (or a .tflite inside one) written by `mobilize export`",
        )
    return folder


def prepare_reference(
    model_path: Path,
    quality_images: Path | None = None,
    count: int = DEFAULT_QUALITY_SAMPLES,
) -> QualityReference:
    """Rebuild the PyTorch model named in metadata.json and run it on held-out inputs.

    Inputs come from `quality_images` (png/jpg folder or .npy/.npz, as the exporter's
    --calib-dir), else from the exporter's own held-out photographs.
    """
    folder = export_folder_of(model_path)
    metadata = read_metadata(folder)
    if len(metadata.inputs) != 1 or len(metadata.output_names) != 1:
        raise ModelError(
            f"the on-phone quality gate handles one input and one output; {folder.name} has "
            f"{len(metadata.inputs)} inputs and {len(metadata.output_names)} outputs",
            hint="bench it without --check-quality; the exporter's host-side verification "
            "(metadata.json) covers it",
        )
    if quality_images is not None and not quality_images.exists():
        raise ModelError(
            f"--quality-images {quality_images}: no such file or folder",
            hint="give a folder of png/jpg images or a .npy/.npz file of NCHW inputs",
        )
    try:
        built = rebuild_reference(metadata, quality_images, count)
    except UsageError as error:
        raise ModelError(error.message, hint=error.hint) from error
    return QualityReference(
        source=built.source,
        input_spec=built.input_spec,
        inputs=built.inputs,
        output_name=built.output_name,
        reference=built.outputs,
        output_range=built.output_range,
    )


def model_formats(path: Path, reference: QualityReference) -> tuple[TensorFormat, TensorFormat]:
    """The .tflite's input and output formats, read from the file with LiteRT."""
    return tensor_formats(path, reference.input_spec.shape, (1, *reference.reference.shape[1:]))


def evaluate(reference: QualityReference, outputs: np.ndarray) -> QualityResult:
    """PSNR, SSIM and max abs error of each phone output against PyTorch's."""
    images = []
    for index, name in enumerate(reference.file_names()):
        figures = image_figures(
            reference.reference[index : index + 1],
            outputs[index : index + 1],
            reference.output_range,
        )
        images.append(
            ImageFigures(
                file=name,
                psnr_db=figures.psnr_db if math.isfinite(figures.psnr_db) else None,
                ssim=figures.ssim,
                max_abs_error=figures.max_abs_error,
            )
        )
    return QualityResult(tuple(images), outputs)
