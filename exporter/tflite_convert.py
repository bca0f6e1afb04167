"""Stage 6: float SavedModel -> .tflite for one target, with our own representative data.

The representative dataset feeds each input in the SavedModel's layout (onnx2tf makes image
inputs NHWC), so calibration sees exactly what the app will feed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from exporter.calibration import SampleSet
from exporter.config import IoType, Layout, QuantConfig, Target
from exporter.errors import ConversionError
from exporter.saved_model import SIGNATURE, SavedModelArtifact
from exporter.specs import InputSpec

RepresentativeDataset = Callable[[], Iterator[dict[str, np.ndarray]]]


@dataclass(frozen=True)
class TfliteArtifact:
    target: Target
    content: bytes
    io: IoType | None  # None for float targets


def _channels_last(rank: int) -> tuple[int, ...]:
    return (0, *range(2, rank), 1)


def layout_of(nchw: Sequence[int], seen: Sequence[int]) -> Layout:
    """How TFLite holds a tensor PyTorch holds channels-first: NHWC means channels last
    (onnx2tf's choice for every tensor of rank 3 or more), NCHW means unchanged."""
    nchw, seen = tuple(nchw), tuple(seen)
    if seen == nchw:
        return Layout.NCHW
    if len(nchw) >= 3 and seen == tuple(nchw[i] for i in _channels_last(len(nchw))):
        return Layout.NHWC
    return Layout.OTHER


def to_layout(nchw: np.ndarray, layout: Layout) -> np.ndarray:
    return nchw.transpose(_channels_last(nchw.ndim)) if layout is Layout.NHWC else nchw


def from_layout(array: np.ndarray, layout: Layout) -> np.ndarray:
    if layout is not Layout.NHWC:
        return array
    return array.transpose(np.argsort(_channels_last(array.ndim)))


def representative_dataset(samples: SampleSet, inputs: Sequence[InputSpec],
                           saved: SavedModelArtifact) -> RepresentativeDataset:
    layouts = {spec.name: layout_of(spec.shape, saved.input_shapes[spec.name]) for spec in inputs}

    def generate() -> Iterator[dict[str, np.ndarray]]:
        for index in range(samples.count):
            yield {name: to_layout(array, layouts[name]).astype(np.float32)
                   for name, array in samples.sample(index).items()}

    return generate


def convert(saved: SavedModelArtifact, quant: QuantConfig,
            dataset: RepresentativeDataset | None) -> TfliteArtifact:
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
    return TfliteArtifact(target=target, content=content, io=io)


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
