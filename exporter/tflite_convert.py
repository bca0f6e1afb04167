"""Stage 6: float SavedModel -> .tflite for one target, with our own representative data.

The representative dataset feeds each input in the SavedModel's layout (onnx2tf makes image
inputs NHWC), so calibration sees exactly what the app will feed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from mobilize.contract.specs import InputSpec
from mobilize.contract.tflite_runner import from_layout, layout_of, to_layout  # noqa: F401
from mobilize.errors import ConversionError
from mobilize.exporter.calibration import SampleSet
from mobilize.exporter.config import Int8Ranges, IoType, QuantConfig, Target
from mobilize.exporter.int8_ranges import (
    MINMAX_CANDIDATE,
    MSE_CANDIDATE,
    RangeEstimator,
    RangeOptions,
    candidate_name,
    quantize_choosing_ranges,
    quantize_with_ranges,
)
from mobilize.exporter.saved_model import SIGNATURE, SavedModelArtifact
from mobilize.exporter.tflite_activations import NarrowedActivation, narrow_fixed_output_ranges
from mobilize.exporter.tflite_compact import with_shared_quantization
from mobilize.exporter.tflite_order import in_forward_order

RepresentativeDataset = Callable[[], Iterator[dict[str, np.ndarray]]]

# --int8-ranges auto: this share of the calibration samples chooses the range quantile.
VALIDATION_SHARE = 0.25
# Below this many calibration samples nothing is split off: the median quantile is used.
MIN_SAMPLES_TO_SPLIT = 4


@dataclass(frozen=True)
class RangeReport:
    """How tflite-int8's activation ranges were taken (metadata.json's int8_ranges)."""

    mode: Int8Ranges
    estimator: RangeEstimator
    quantile: float | None  # None for min/max and mse
    # Output RMSE vs the float model on the validation samples, per candidate: "minmax",
    # each quantile ("0.35") and "mse", in the order tried (auto only).
    rmse_by_candidate: tuple[tuple[str, float], ...] = ()
    # TANH outputs moved off their fixed int8 range (exporter/tflite_activations.py)
    narrowed: tuple[NarrowedActivation, ...] = ()

    @property
    def options(self) -> RangeOptions:
        if self.quantile is None:
            return RangeOptions(estimator=self.estimator)
        return RangeOptions(estimator=self.estimator, quantile=self.quantile)

    @property
    def chosen(self) -> str:
        if self.estimator is RangeEstimator.MSE:
            return MSE_CANDIDATE
        return MINMAX_CANDIDATE if self.quantile is None else candidate_name(self.quantile)

    def to_json(self) -> dict[str, object]:
        return {"mode": self.mode.value, "estimator": self.estimator.value,
                "quantile": self.quantile, "chosen": self.chosen,
                # null: that candidate failed to run (an int8 kernel refused its input)
                "rmse_by_candidate": {name: _finite(rmse)
                                      for name, rmse in self.rmse_by_candidate},
                # the quantile candidates alone, as before min/max and mse became ones
                "rmse_by_quantile": {name: _finite(rmse) for name, rmse in self.rmse_by_candidate
                                     if name not in (MINMAX_CANDIDATE, MSE_CANDIDATE)},
                "narrowed_activations": [op.to_json() for op in self.narrowed]}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class TfliteArtifact:
    target: Target
    content: bytes
    io: IoType | None  # None for float targets
    ranges: RangeReport | None = None  # tflite-int8 only


def split_validation(samples: SampleSet) -> tuple[SampleSet, SampleSet | None]:
    """(calibration, validation): the last quarter of the calibration samples chooses the
    range quantile; the verification set stays untouched so its figures stay honest."""
    if samples.count < MIN_SAMPLES_TO_SPLIT:
        return samples, None
    held = max(1, round(samples.count * VALIDATION_SHARE))
    kept = samples.count - held
    calibration = SampleSet({k: v[:kept] for k, v in samples.arrays.items()}, samples.source,
                            kept, samples.warnings)
    validation = SampleSet({k: v[kept:] for k, v in samples.arrays.items()}, samples.source,
                           held)
    return calibration, validation


def split_by_photo(samples: SampleSet) -> tuple[SampleSet, SampleSet | None]:
    """(training, validation) for --finetune: whole photographs held out, the last ones until
    a quarter of the samples, so the fine-tuned weights are judged on pictures they never
    saw (crops of a trained-on photo share its pixels and flatter the fine-tuned file).
    Samples without a known photograph (each its own image) split as split_validation."""
    photos = samples.photo_of_sample
    if len(set(photos)) < 2 or samples.count < MIN_SAMPLES_TO_SPLIT:
        return split_validation(samples)
    held: set[int] = set()
    for photo in sorted(set(photos))[:0:-1]:  # the last first, the first photo never held
        held.add(photo)
        if sum(p in held for p in photos) >= samples.count * VALIDATION_SHARE:
            break
    keep = np.array([p not in held for p in photos])
    return (_subset(samples, keep, samples.warnings), _subset(samples, ~keep, ()))


def _subset(samples: SampleSet, mask: np.ndarray, warnings: tuple[str, ...]) -> SampleSet:
    photos = tuple(p for p, kept in zip(samples.photo_of_sample, mask, strict=True) if kept)
    return SampleSet({k: v[mask] for k, v in samples.arrays.items()}, samples.source,
                     int(mask.sum()), warnings, photos)


def representative_dataset(samples: SampleSet, inputs: Sequence[InputSpec],
                           saved: SavedModelArtifact) -> RepresentativeDataset:
    layouts = {spec.name: layout_of(spec.shape, saved.input_shapes[spec.name]) for spec in inputs}

    def generate() -> Iterator[dict[str, np.ndarray]]:
        for index in range(samples.count):
            yield {name: to_layout(array, layouts[name]).astype(np.float32)
                   for name, array in samples.sample(index).items()}

    return generate


def convert(saved: SavedModelArtifact, quant: QuantConfig,
            dataset: RepresentativeDataset | None,
            validation: RepresentativeDataset | None = None) -> TfliteArtifact:
    """validation: samples apart from `dataset` for --int8-ranges auto to choose the range
    quantile on; without them auto takes the median quantile. Inputs and outputs come in
    forward()'s order (the converter lists them alphabetically). Quantized files store each
    distinct quantization vector once (tflite_compact: same values, smaller file)."""
    if quant.target is Target.INT8 and quant.int8_ranges is not Int8Ranges.MINMAX:
        artifact = _int8_with_ranges(saved, quant, dataset, validation)
    else:
        artifact = _converted(saved, quant, dataset)
    content = artifact.content
    if saved.order is not None:
        content = in_forward_order(content, saved.order)
    if quant.target is not Target.FP32:
        content = with_shared_quantization(content)
    return replace(artifact, content=content)


def _converted(saved: SavedModelArtifact, quant: QuantConfig,
               dataset: RepresentativeDataset | None) -> TfliteArtifact:
    """The converter's own call for every target but tflite-int8 with our ranges."""
    import tensorflow as tf


    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved.path), [SIGNATURE])
    target = quant.target
    io: IoType | None = None
    if target is Target.FP16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif target is Target.DYNAMIC:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif target.needs_calibration:
        if dataset is None:
            raise ConversionError(f"{target.value} needs calibration data",
                                  hint="give --calib-dir, or leave it out to use bundled photos")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        io = quant.io
        if target is Target.INT8:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = {IoType.INT8: tf.int8, IoType.UINT8: tf.uint8,
                       IoType.FLOAT: tf.float32}[quant.io]
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            # int16x8 has int16 integer I/O; uint8/int8 I/O do not exist for it.
            io_type = tf.float32 if quant.io is IoType.FLOAT else tf.int16
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    for name, value in quant.converter_flags:
        if not hasattr(converter, name):
            raise ConversionError(f"TFLiteConverter has no attribute {name!r}",
                                  hint="check the converter flag's name for this TensorFlow")
        setattr(converter, name, value)
    try:
        content = converter.convert()
    except Exception as error:
        raise converter_error(error, target) from error
    ranges = (RangeReport(Int8Ranges.MINMAX, RangeEstimator.MIN_MAX, None)
              if target is Target.INT8 else None)
    return TfliteArtifact(target=target, content=content, io=io, ranges=ranges)


def _int8_with_ranges(saved: SavedModelArtifact, quant: QuantConfig,
                      dataset: RepresentativeDataset | None,
                      validation: RepresentativeDataset | None) -> TfliteArtifact:
    """Full-integer int8 with per-sample quantile ranges (exporter/quant_debug.py): the
    converter's calibration and quantizer, robust ranges in between (+0.6 to +11 dB PSNR on
    the project's trained models at 256x256, same ops, same speed)."""
    if dataset is None:
        raise ConversionError(f"{quant.target.value} needs calibration data",
                              hint="give --calib-dir, or leave it out to use bundled photos")
    if quant.converter_flags:
        raise ConversionError("converter flags apply to the converter's own ranges only",
                              hint="give int8_ranges minmax (--int8-ranges minmax) "
                              "with converter flags")
    if quant.int8_ranges is Int8Ranges.AUTO and validation is not None:
        choice = quantize_choosing_ranges(saved.path, dataset, validation, io=quant.io,
                                          signature_key=SIGNATURE)
        chosen = choice.options
        quantile = (chosen.quantile if chosen.estimator is RangeEstimator.SAMPLE_QUANTILE
                    else None)
        report = RangeReport(Int8Ranges.AUTO, chosen.estimator, quantile,
                             tuple(choice.rmse_by_candidate.items()))
        content = choice.model
    else:
        options = RangeOptions()
        content = quantize_with_ranges(saved.path, dataset, options, io=quant.io,
                                       signature_key=SIGNATURE)
        report = RangeReport(quant.int8_ranges, options.estimator, options.quantile)
    # After the choice: the candidates differ in the ranges the converter takes, this
    # narrowing is exact for any of them (nothing it can produce is clipped).
    content, narrowed = narrow_fixed_output_ranges(content)
    return TfliteArtifact(target=quant.target, content=content, io=quant.io,
                          ranges=replace(report, narrowed=narrowed))


def converter_error(error: Exception, target: Target) -> ConversionError:
    text = str(error)
    op = (re.search(r"'(tfl?\.[A-Za-z0-9_]+)' op", text)
          or re.search(r"not (?:yet )?supported for op: '(\w+)'", text))
    node = re.search(r'loc\((?:fused\[)?"([^"]+)"', text)
    op_text = op.group(1) if op else "an op"
    node_text = f" (node {node.group(1)!r})" if node else ""
    first = next((line for line in text.splitlines() if "error" in line.lower()),
                 text.splitlines()[0] if text else type(error).__name__)
    hint = ("this op has no full-integer kernel: try --target tflite-dynamic or --io float, "
            "or rewrite the layer before export" if target.needs_calibration else
            "run with --debug and check the op in the ONNX file beside the output")
    return ConversionError(
        f"TFLite converter failed for {target.value} at {op_text}{node_text}: {first.strip()}",
        hint=hint,
    )
