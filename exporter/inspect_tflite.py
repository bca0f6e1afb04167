"""Read a .tflite file's graph: op histogram, I/O types and quantization, float ops left in a
full-integer model, layout transposes between convolutions.

Ops are read through LiteRT's interpreter built without default delegates, so XNNPACK does
not fold the graph into DELEGATE nodes before we look at it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

CONV_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"})
FLOAT_TYPES = (np.float32, np.float16, np.float64)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class GraphReport:
    op_histogram: dict[str, int]
    float_ops: tuple[str, ...]  # "OP#index -> tensor" for compute in float
    fully_integer: bool
    transposes_between_convs: int
    inputs: tuple[TensorInfo, ...]  # in signature order, named by signature key
    outputs: tuple[TensorInfo, ...]


def _interpreter(content: bytes, delegates: bool = False) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (OpResolverType.AUTO if delegates
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return Interpreter(model_content=content, experimental_op_resolver_type=resolver)


def tensor_info(name: str, detail: dict[str, Any]) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quantized = bool(scale)
    return TensorInfo(
        name=name,
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )


def inspect_graph(content: bytes) -> GraphReport:
    interpreter = _interpreter(content)
    ops = interpreter._get_ops_details()  # the public API has no op list
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    runner = interpreter.get_signature_runner()
    inputs = tuple(tensor_info(k, v) for k, v in runner.get_input_details().items())
    outputs = tuple(tensor_info(k, v) for k, v in runner.get_output_details().items())
    input_indices = {int(v["index"]) for v in runner.get_input_details().values()}
    output_indices = {int(v["index"]) for v in runner.get_output_details().values()}

    float_ops = []
    for op in ops:
        if _is_io_boundary(op, input_indices, output_indices):
            continue
        if any(t in FLOAT_TYPES for t in list(op["operand_types"]) + list(op["result_types"])
               if t is not None):
            outs = [tensors[i]["name"] for i in op["outputs"] if i in tensors]
            float_ops.append(f"{op['op_name']}#{op['index']} -> {', '.join(outs)}")
    return GraphReport(
        op_histogram=dict(Counter(op["op_name"] for op in ops).most_common()),
        float_ops=tuple(float_ops),
        fully_integer=not float_ops,
        transposes_between_convs=_transposes_between_convs(ops),
        inputs=inputs,
        outputs=outputs,
    )


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


def _is_io_boundary(op: dict[str, Any], inputs: set[int], outputs: set[int]) -> bool:
    """QUANTIZE of a float model input / DEQUANTIZE to a float output (--io float)."""
    if op["op_name"] == "QUANTIZE":
        return any(int(i) in inputs for i in op["inputs"])
    if op["op_name"] == "DEQUANTIZE":
        return any(int(i) in outputs for i in op["outputs"])
    return False


def _transposes_between_convs(ops: list[dict[str, Any]]) -> int:
    producer = {int(t): op for op in ops for t in op["outputs"]}
    consumers: dict[int, list[dict[str, Any]]] = {}
    for op in ops:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op)

    def reaches_conv(start: dict[str, Any], upstream: bool) -> bool:
        seen, stack = set(), [start]
        while stack:
            op = stack.pop()
            if op["index"] in seen:
                continue
            seen.add(op["index"])
            if op is not start and op["op_name"] in CONV_OPS:
                return True
            if upstream:
                stack += [producer[int(t)] for t in op["inputs"] if int(t) in producer]
            else:
                stack += [c for t in op["outputs"] for c in consumers.get(int(t), [])]
        return False

    return sum(1 for op in ops if op["op_name"] == "TRANSPOSE"
               and reaches_conv(op, upstream=True) and reaches_conv(op, upstream=False))


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
