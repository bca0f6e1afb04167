"""Stage 7: does the .tflite still draw what PyTorch draws? Figures on held-out samples.

Two PSNRs, one gate. `psnr_db` pools the squared error over all held-out images;
`worst_image_psnr_db` is the lowest PSNR of a single image, computed exactly as the on-phone
gate computes it (`mobilize.contract.reference.image_figures`: the same `compare` on one
image). Every --min-psnr (export, bench --check-quality, sweep) gates on the worst image:
one bad picture is what a user sees, and the pooled figure hides it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity
from torch import nn

from mobilize.contract.specs import DIFF_AMPLIFICATION, InputSpec, ValueRange
from mobilize.contract.tflite_runner import Layout, NchwRunner, input_quantization
from mobilize.errors import ConversionError
from mobilize.exporter.calibration import SampleSet, from_range

INPUT_BOUND_NOTE = ("PyTorch fp32 on the inputs rounded onto this file's integer input grid, "
                    "against PyTorch fp32: the best any model reading that input can reach")


@dataclass(frozen=True)
class OutputFigures:
    name: str
    psnr_db: float  # pooled: the mean squared error over every held-out image
    snr_db: float
    ssim: float | None  # image outputs only
    max_abs_error: float
    data_range: float
    worst_image_psnr_db: float  # the lowest single-image PSNR: what every --min-psnr gates on
    image_psnr_db: tuple[float, ...] = ()  # per held-out image, in order

    def to_json(self) -> dict[str, Any]:
        found = {k: _finite(v) for k, v in self.__dict__.items()}
        found["image_psnr_db"] = [_finite(v) for v in self.image_psnr_db]
        return found


@dataclass(frozen=True)
class Verification:
    samples: int
    source: str
    outputs: tuple[OutputFigures, ...]
    input_layouts: dict[str, Layout]
    output_layouts: dict[str, Layout]
    # PyTorch fp32 fed the inputs rounded onto the file's own integer input grid, against
    # PyTorch fp32: no model with that input can do better (None: the file reads floats).
    input_bound: tuple[OutputFigures, ...] | None = None

    @property
    def worst_psnr_db(self) -> float:
        """The gate's figure: the worst single held-out image's PSNR, over all outputs."""
        return min(o.worst_image_psnr_db for o in self.outputs)

    @property
    def worst_snr_db(self) -> float:
        """SNR of the output that keeps least: what the int8 advice and --finetune judge."""
        return min(o.snr_db for o in self.outputs)

    @property
    def pooled_psnr_db(self) -> float:
        """PSNR of the error pooled over all held-out images (worst output); shown, never gated."""
        return min(o.psnr_db for o in self.outputs)

    @property
    def input_cap_psnr_db(self) -> float | None:
        """Worst-image PSNR PyTorch reaches on inputs rounded to the file's grid (None: float)."""
        if self.input_bound is None:
            return None
        return min(o.worst_image_psnr_db for o in self.input_bound)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"samples": self.samples, "source": self.source,
                                 "psnr_db": _finite(self.pooled_psnr_db),
                                 "worst_image_psnr_db": _finite(self.worst_psnr_db),
                                 "gate": "worst_image_psnr_db",
                                 "outputs": [o.to_json() for o in self.outputs]}
        if self.input_bound is not None:
            found["input_bound"] = {"note": INPUT_BOUND_NOTE,
                                    "outputs": [o.to_json() for o in self.input_bound]}
        return found


def _finite(value: Any) -> Any:
    # JSON has no infinity: an exact match is reported as null PSNR with max_abs_error 0.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def torch_outputs(module: nn.Module, samples: SampleSet, inputs: Sequence[InputSpec],
                  output_names: Sequence[str]) -> dict[str, np.ndarray]:
    collected: dict[str, list[np.ndarray]] = {name: [] for name in output_names}
    with torch.no_grad():
        for index in range(samples.count):
            feeds = samples.sample(index)
            result = module(*(torch.from_numpy(feeds[spec.name]) for spec in inputs))
            result = result if isinstance(result, (tuple, list)) else (result,)
            for name, tensor in zip(output_names, result, strict=True):
                collected[name].append(tensor.numpy())
    return {name: np.concatenate(arrays) for name, arrays in collected.items()}


def tflite_outputs(content: bytes, samples: SampleSet, inputs: Sequence[InputSpec],
                   reference: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray],
                                                              dict[str, Layout], dict[str, Layout]]:
    runner = NchwRunner(content, {spec.name: spec.shape for spec in inputs},
                        {name: (1, *array.shape[1:]) for name, array in reference.items()})
    odd = runner.odd_layouts()
    if odd:
        raise ConversionError(
            f"the TFLite model's tensors {', '.join(odd)} have shapes that match PyTorch's "
            "neither as they are nor channels-last, so outputs cannot be compared",
            hint="check the ONNX file beside the output; give the model static NCHW inputs")
    collected: dict[str, list[np.ndarray]] = {name: [] for name in reference}
    for index in range(samples.count):
        for name, array in runner(samples.sample(index)).items():
            collected[name].append(array)
    return ({name: np.concatenate(arrays) for name, arrays in collected.items()},
            runner.input_layouts, runner.output_layouts)


def _data_range(reference: np.ndarray, output_range: ValueRange | None) -> float:
    if output_range is not None and output_range.mean is None:
        return output_range.high - output_range.low
    return float(reference.max() - reference.min()) or 1.0


def _psnr(reference: np.ndarray, converted: np.ndarray, output_range: ValueRange | None) -> float:
    error = converted.astype(np.float64) - reference.astype(np.float64)
    mse = float(np.mean(error ** 2))
    return 10 * math.log10(_data_range(reference, output_range) ** 2 / mse) if mse > 0 \
        else math.inf


def image_psnrs(reference: np.ndarray, converted: np.ndarray,
                output_range: ValueRange | None) -> tuple[float, ...]:
    """PSNR of each image (first axis) alone, as the on-phone gate computes it."""
    if reference.ndim == 0 or reference.shape[0] <= 1:
        return (_psnr(reference, converted, output_range),)
    return tuple(_psnr(reference[i:i + 1], converted[i:i + 1], output_range)
                 for i in range(reference.shape[0]))


def compare(name: str, reference: np.ndarray, converted: np.ndarray,
            output_range: ValueRange | None) -> OutputFigures:
    """Figures pooled over the batch (`psnr_db`), and each image's PSNR with the worst."""
    data_range = _data_range(reference, output_range)
    error = converted.astype(np.float64) - reference.astype(np.float64)
    mse = float(np.mean(error ** 2))
    signal = float(np.var(reference.astype(np.float64)))  # variance: a constant offset is no signal
    psnr = _psnr(reference, converted, output_range)
    images = image_psnrs(reference, converted, output_range)
    snr = 10 * math.log10(signal / mse) if mse > 0 and signal > 0 else math.inf
    ssim = None
    if reference.ndim == 4 and reference.shape[2] >= 7 and reference.shape[3] >= 7:
        ssim = float(np.mean([
            structural_similarity(r, c, data_range=data_range, channel_axis=0)
            for r, c in zip(reference, converted, strict=True)]))
    return OutputFigures(name=name, psnr_db=psnr, snr_db=snr, ssim=ssim,
                         max_abs_error=float(np.max(np.abs(error))), data_range=data_range,
                         worst_image_psnr_db=min(images), image_psnr_db=images)


def verify(module: nn.Module, content: bytes, samples: SampleSet, inputs: Sequence[InputSpec],
           output_names: Sequence[str], output_range: ValueRange | None,
           reference: dict[str, np.ndarray] | None = None,
           ) -> tuple[Verification, dict[str, np.ndarray], dict[str, np.ndarray]]:
    reference = reference or torch_outputs(module, samples, inputs, output_names)
    converted, input_layouts, output_layouts = tflite_outputs(content, samples, inputs, reference)
    figures = tuple(compare(name, reference[name], converted[name], output_range)
                    for name in output_names)
    bound = input_bound(module, content, samples, inputs, output_names, output_range, reference)
    return (Verification(samples.count, samples.source, figures, input_layouts, output_layouts,
                         bound), reference, converted)


def input_bound(module: nn.Module, content: bytes, samples: SampleSet,
                inputs: Sequence[InputSpec], output_names: Sequence[str],
                output_range: ValueRange | None, reference: dict[str, np.ndarray],
                ) -> tuple[OutputFigures, ...] | None:
    """How close PyTorch itself stays when its inputs are only rounded the way the file
    rounds them. A net that amplifies input noise (random-init InstanceNorm nets do, by
    ~30 dB more than trained ones) cannot be helped past this by any int8 rewrite."""
    grids = input_quantization(content)
    if not grids:
        return None
    rounded = replace(samples, arrays={
        name: grids[name].round_trip(array) if name in grids else array
        for name, array in samples.arrays.items()})
    bounded = torch_outputs(module, rounded, inputs, output_names)
    return tuple(compare(name, reference[name], bounded[name], output_range)
                 for name in output_names)


def strip_image(inputs: Sequence[InputSpec], samples: SampleSet, reference: np.ndarray,
                converted: np.ndarray, output_range: ValueRange | None) -> np.ndarray | None:
    """One row per sample: input, PyTorch output, TFLite output, |difference| x10, uint8 HWC."""
    first = inputs[0]
    if reference.ndim != 4 or reference.shape[1] not in (1, 3) or not first.is_image:
        return None
    height, width = reference.shape[2:]
    rows = []
    for index in range(samples.count):
        shown_input = from_range(samples.arrays[first.name][index:index + 1], first.value_range)
        ref = _to_unit(reference[index:index + 1], output_range, reference)
        conv = _to_unit(converted[index:index + 1], output_range, reference)
        diff = np.clip(np.abs(ref - conv) * DIFF_AMPLIFICATION, 0, 1)
        panels = [_resize_nearest(shown_input[0], height, width), ref[0], conv[0], diff[0]]
        rows.append(np.concatenate([_rgb(p) for p in panels], axis=1))
    return (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).round().astype(np.uint8)


def _to_unit(array: np.ndarray, output_range: ValueRange | None,
             reference: np.ndarray) -> np.ndarray:
    if output_range is not None:
        return from_range(array, output_range)
    low, high = float(reference.min()), float(reference.max())
    return (array - low) / ((high - low) or 1.0)


def _resize_nearest(chw: np.ndarray, height: int, width: int) -> np.ndarray:
    rows = (np.arange(height) * chw.shape[1] // height)
    cols = (np.arange(width) * chw.shape[2] // width)
    return chw[:, rows][:, :, cols]


def _rgb(chw: np.ndarray) -> np.ndarray:
    hwc = chw.transpose(1, 2, 0)
    return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc
