"""The PyTorch reference of an export, rebuilt from its metadata.json: the one door through
which the device side reaches the exporter.

The quality gate needs what the exporter has — the user's model loaded the same way, the
held-out photographs, the same PSNR/SSIM — but `mobilize bench` must not pay for torch and
TensorFlow unless it runs the gate. So the exporter is imported here, inside the functions,
and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilize.contract.metadata import ExportMetadata
from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.errors import MobilizeError, UsageError


@dataclass(frozen=True)
class Reference:
    """Held-out inputs (NCHW, in the input's value range) and PyTorch's fp32 outputs."""

    source: str  # where the inputs came from
    input_spec: InputSpec
    inputs: np.ndarray
    output_name: str
    outputs: np.ndarray
    output_range: ValueRange | None


@dataclass(frozen=True)
class ImageFigures:
    psnr_db: float  # inf: identical
    ssim: float | None
    max_abs_error: float


def rebuild_reference(metadata: ExportMetadata, images: Path | None, count: int) -> Reference:
    """Load the model metadata.json names (paths relative to the export folder first, then to
    the current folder) and run it on `images` (png/jpg folder or .npy/.npz, all of it), else
    on `count` of the exporter's own held-out photographs."""
    from mobilize.exporter.calibration import build_representative_data
    from mobilize.exporter.config import CalibSource
    from mobilize.exporter.verify import torch_outputs

    loaded = _load(metadata)
    sources = (CalibSource(None, images),) if images is not None else ()
    data = build_representative_data(loaded.inputs, sources, calib_samples=count if sources
                                     else 0, verify_samples=1 if sources else count,
                                     calibrating=False)
    samples = data.calibration if sources else data.verification
    outputs = torch_outputs(loaded.module, samples, loaded.inputs, loaded.output_names)
    spec, name = loaded.inputs[0], loaded.output_names[0]
    return Reference(samples.source, spec, samples.arrays[spec.name], name, outputs[name],
                     loaded.output_range)


def _load(metadata: ExportMetadata):
    from mobilize.exporter.model_loader import load_model

    source = metadata.source_model
    if source is None or source.kind == "module":
        raise UsageError(
            f"{metadata.path} names no model that can be rebuilt "
            f"({source.ref if source else 'none'}: it was handed to mobilize.export() in memory)",
            hint="export with a reference (path/file.py:factory or package.module:factory), or "
            "bench without --check-quality")
    ref, weights = _resolved(source.ref, metadata.folder), source.weights
    try:
        return load_model(
            ref, weights=Path(_resolved(weights, metadata.folder)) if weights else None,
            input_shapes=[spec.shape for spec in metadata.inputs],
            input_ranges=[spec.value_range for spec in metadata.inputs],
            input_names=[spec.name for spec in metadata.inputs],
            output_range=metadata.output_range)
    except MobilizeError as error:
        raise UsageError(
            f"cannot rebuild the PyTorch reference {source.ref!r} from {metadata.path}: "
            f"{error.message}",
            hint="keep the model's file (and weights) where they were when you exported; "
            "relative paths are tried against the export folder and the current folder",
        ) from error


def _resolved(ref: str, folder: Path) -> str:
    """A relative file path in a model reference, made absolute where it exists relative to
    the export folder's parent (where `mobilize export` ran, in the common case) or the
    current folder; a module path (package.module:factory) is left as it is."""
    path_part, sep, factory = ref.rpartition(":") if ":" in ref else (ref, "", "")
    candidate = Path(path_part)
    if candidate.is_absolute() or not (path_part.endswith((".py", ".pt", ".pt2", ".pth"))
                                       or candidate.suffix):
        return ref
    for base in (Path.cwd(), folder.parent, folder):
        if (base / candidate).exists():
            return f"{(base / candidate).resolve()}{sep}{factory}"
    return ref


def image_figures(reference: np.ndarray, converted: np.ndarray,
                  output_range: ValueRange | None) -> ImageFigures:
    """PSNR, SSIM and max abs error of one output against PyTorch's (the exporter's own)."""
    from mobilize.exporter.verify import compare

    figures = compare("output", reference, converted, output_range)
    return ImageFigures(figures.psnr_db, figures.ssim, figures.max_abs_error)
