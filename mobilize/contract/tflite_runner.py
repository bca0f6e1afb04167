"""Run a .tflite on the host, and move arrays between PyTorch's view and the file's.

The one place that knows how a converted file holds its tensors: channels-last (onnx2tf's
NHWC) or as PyTorch has them, and int8/uint8/int16 I/O quantized with each tensor's own
scale and zero point. The exporter's verification, the model card, the on-phone quality
gate and the input cap all go through here, so they agree on every rounding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np


class Layout(StrEnum):
    NCHW = "NCHW"
    NHWC = "NHWC"
    OTHER = "other"


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


def _interpreter(content: bytes, delegates: bool = False) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (OpResolverType.AUTO if delegates
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return Interpreter(model_content=content, experimental_op_resolver_type=resolver)


@dataclass(frozen=True)
class InputQuantization:
    """The integer grid an input is read onto: its own tensor's (int8/uint8 I/O) or, for a
    float input, that of the QUANTIZE op right behind it (--io float)."""

    scale: float
    zero_point: int
    dtype: str  # the integer type, e.g. "int8"

    @property
    def low(self) -> int:
        return int(np.iinfo(np.dtype(self.dtype)).min)

    @property
    def high(self) -> int:
        return int(np.iinfo(np.dtype(self.dtype)).max)

    def round_trip(self, array: np.ndarray) -> np.ndarray:
        """`array` as the file reads it: quantized and dequantized as TfliteRunner does."""
        detail = {"dtype": self.dtype, "quantization": (self.scale, self.zero_point)}
        return dequantize(quantize(array, detail), detail).astype(array.dtype)


def input_quantization(content: bytes) -> dict[str, InputQuantization]:
    """Signature input name -> its integer grid, for the inputs that have one."""
    interpreter = _interpreter(content)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    quantize_output = {int(op["inputs"][0]): int(op["outputs"][0])
                       for op in interpreter._get_ops_details() if op["op_name"] == "QUANTIZE"}
    found = {}
    for name, detail in interpreter.get_signature_runner().get_input_details().items():
        index = int(detail["index"])
        if np.dtype(detail["dtype"]).kind == "f" and index in quantize_output:
            detail = tensors[quantize_output[index]]
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if scale and np.dtype(detail["dtype"]).kind in "iu":
            found[name] = InputQuantization(float(scale), int(zero_point),
                                            np.dtype(detail["dtype"]).name)
    return found


class TfliteRunner:
    """Runs a .tflite through its signature with float NCHW-agnostic arrays in and out:
    quantizes inputs and dequantizes outputs with the tensors' own parameters."""

    def __init__(self, content: bytes, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=content, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner()
        self.input_details = self.runner.get_input_details()
        self.output_details = self.runner.get_output_details()

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        quantized = {name: quantize(array, self.input_details[name])
                     for name, array in feeds.items()}
        results = self.runner(**quantized)
        return {name: dequantize(results[name], self.output_details[name])
                for name in self.output_details}


def quantize(array: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return array.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(array / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(array: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return array.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((array.astype(np.float32) - zero_point) * scale).astype(np.float32)


class NchwRunner:
    """A TfliteRunner fed and read in PyTorch's NCHW: each tensor's layout is read off the
    file against the NCHW shapes PyTorch gives it."""

    def __init__(self, content: bytes, input_shapes: Mapping[str, Sequence[int]],
                 output_shapes: Mapping[str, Sequence[int]], num_threads: int | None = None):
        self.runner = TfliteRunner(content, num_threads)
        self.input_layouts = {name: layout_of(shape, self.runner.input_details[name]["shape"])
                              for name, shape in input_shapes.items()}
        self.output_layouts = {name: layout_of(shape, self.runner.output_details[name]["shape"])
                               for name, shape in output_shapes.items()}

    def odd_layouts(self) -> list[str]:
        """Tensors whose shape matches PyTorch's neither as is nor channels-last."""
        return [name for name, layout in {**self.input_layouts, **self.output_layouts}.items()
                if layout is Layout.OTHER]

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.runner({name: to_layout(array, self.input_layouts[name])
                               for name, array in feeds.items()})
        return {name: from_layout(outputs[name], self.output_layouts[name])
                for name in self.output_layouts}


@dataclass(frozen=True)
class TensorFormat:
    """How the .tflite holds one tensor: layout, dtype and quantization."""

    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None
    zero_point: int | None
    layout: Layout

    def encode(self, nchw: np.ndarray) -> np.ndarray:
        """A float NCHW sample -> what the model takes (its layout; quantized for int I/O)."""
        return quantize(to_layout(nchw, self.layout), self._detail())

    def decode(self, array: np.ndarray) -> np.ndarray:
        """What the model wrote -> float NCHW (dequantized for int I/O)."""
        detail = self._detail() if np.issubdtype(array.dtype, np.integer) else {
            "dtype": np.float32}
        return from_layout(dequantize(array, detail).reshape(self.shape), self.layout)

    def _detail(self) -> dict[str, Any]:
        if self.scale is None or not np.issubdtype(self.dtype, np.integer):
            return {"dtype": self.dtype}
        return {"dtype": self.dtype, "quantization": (self.scale, self.zero_point or 0)}


def tensor_formats(path: Path, input_nchw: Sequence[int],
                   output_nchw: Sequence[int]) -> tuple[TensorFormat, TensorFormat]:
    """A one-input, one-output .tflite's input and output formats, read with LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    formats = []
    for detail, nchw in ((interpreter.get_input_details()[0], input_nchw),
                         (interpreter.get_output_details()[0], output_nchw)):
        scale, zero_point = detail.get("quantization", (0.0, 0))
        shape = tuple(int(v) for v in detail["shape"])
        formats.append(TensorFormat(
            shape=shape, dtype=np.dtype(detail["dtype"]),
            scale=float(scale) if scale else None,
            zero_point=int(zero_point) if scale else None,
            layout=layout_of(nchw, shape)))
    return formats[0], formats[1]
