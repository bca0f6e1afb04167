"""Small PNG previews of the quality pass (input, PyTorch, phone, |difference| x10), kept with
the run in the results database and shown by the HTML report."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

from mobilize.contract.specs import DIFF_AMPLIFICATION, from_range

if TYPE_CHECKING:
    from mobilize.bench.quality_reference import QualityReference

# Stored previews are small: they ride in the run's JSON in the results database.
PREVIEW_MAX_SIDE = 256
PREVIEW_IMAGES = 2


def previews(reference: QualityReference, outputs: np.ndarray) -> list[dict[str, str]]:
    """Input, PyTorch output, phone output and |difference| x10 of the first images, as
    base64 PNGs small enough to keep in the results database."""
    spec = reference.input_spec
    if not spec.is_image or outputs.ndim != 4 or outputs.shape[1] not in (1, 3):
        return []
    shown = []
    for index in range(min(PREVIEW_IMAGES, reference.count)):
        ref = _unit(reference.reference[index], reference)
        out = _unit(outputs[index], reference)
        shown.append(
            {
                "input": png_base64(
                    from_range(reference.inputs[index : index + 1], spec.value_range)[0]
                ),
                "reference": png_base64(ref),
                "output": png_base64(out),
                "difference": png_base64(heatmap(np.abs(ref - out) * DIFF_AMPLIFICATION)),
            }
        )
    return shown


def _unit(chw: np.ndarray, reference: QualityReference) -> np.ndarray:
    if reference.output_range is not None:
        return from_range(chw[None], reference.output_range)[0]
    low, high = float(reference.reference.min()), float(reference.reference.max())
    return (chw - low) / ((high - low) or 1.0)


def heatmap(chw: np.ndarray) -> np.ndarray:
    """Largest channel difference, clipped to [0, 1], as a dark-to-hot RGB ramp (CHW)."""
    level = np.clip(chw.max(axis=0), 0.0, 1.0)
    red = np.clip(level * 3.0, 0, 1)
    green = np.clip(level * 3.0 - 1.0, 0, 1)
    blue = np.clip(level * 3.0 - 2.0, 0, 1)
    return np.stack([red, green, blue])


def png_base64(chw: np.ndarray) -> str:
    from PIL import Image

    hwc = np.clip(chw.transpose(1, 2, 0), 0.0, 1.0)
    if hwc.shape[2] == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    image = Image.fromarray((hwc * 255).round().astype(np.uint8))
    if max(image.size) > PREVIEW_MAX_SIDE:
        image.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
