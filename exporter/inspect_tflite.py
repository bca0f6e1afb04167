"""Read a .tflite file's graph: op histogram, I/O types and quantization, float ops left in a
full-integer model, layout transposes between convolutions.

Ops are read through LiteRT's interpreter built without default delegates, so XNNPACK does
not fold the graph into DELEGATE nodes before we look at it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilize.contract.tflite_runner import (  # noqa: F401 - re-exported for the exporter
    InputQuantization,
    TfliteRunner,
    _interpreter,
    dequantize,
    input_quantization,
    quantize,
)

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
    inputs: tuple[TensorInfo, ...]  # by position (forward()'s order), signature names
    outputs: tuple[TensorInfo, ...]
    # LiteRT's default CPU delegate (XNNPACK) on this host: how many partitions it takes, and
    # the ops it leaves to LiteRT's own kernels (each one cuts the delegated graph)
    delegate_partitions: int | None = None
    outside_delegate: dict[str, int] = field(default_factory=dict)

    def delegate_json(self) -> dict[str, Any]:
        return {"name": "XNNPACK", "partitions": self.delegate_partitions,
                "ops_outside": dict(self.outside_delegate)}


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
    inputs = tuple(tensor_info(k, v) for k, v in _by_position(
        runner.get_input_details(), interpreter.get_input_details()))
    outputs = tuple(tensor_info(k, v) for k, v in _by_position(
        runner.get_output_details(), interpreter.get_output_details()))
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
    partitions, outside = delegate_coverage(content)
    return GraphReport(
        op_histogram=dict(Counter(op["op_name"] for op in ops).most_common()),
        float_ops=tuple(float_ops),
        fully_integer=not float_ops,
        transposes_between_convs=_transposes_between_convs(ops),
        inputs=inputs,
        outputs=outputs,
        delegate_partitions=partitions,
        outside_delegate=outside,
    )


def delegate_coverage(content: bytes) -> tuple[int, dict[str, int]]:
    """(partitions, {op: count} left outside) of LiteRT's default delegate (XNNPACK): the
    interpreter with default delegates replaces each partition by one DELEGATE node whose
    inputs and outputs bound the ops it took; every other op runs in LiteRT's own kernels.
    XNNPACK has, for one, no int8 RELU, PRELU, MINIMUM or RSQRT, and no MIRROR_PAD or
    RESIZE_NEAREST_NEIGHBOR at all (docs/benchmarks.md, "Graphs per target")."""
    interpreter = _interpreter(content, delegates=True)
    interpreter.allocate_tensors()  # delegates are applied here
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    covered: set[int] = set()
    for delegate in delegates:
        bounds = {int(t) for t in delegate["inputs"]}
        stack = [int(t) for t in delegate["outputs"]]
        while stack:
            tensor = stack.pop()
            op = producer.get(tensor)
            if tensor in bounds or op is None or op["index"] in covered:
                continue
            covered.add(op["index"])
            stack += [int(t) for t in op["inputs"] if int(t) >= 0]
    outside = Counter(op["op_name"] for op in ops
                      if op["op_name"] != "DELEGATE" and op["index"] not in covered)
    return len(delegates), dict(outside.most_common())


def _by_position(signature: dict[str, dict[str, Any]],
                 positional: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Signature (name, detail) pairs in the order of the model's input/output list: the
    order an app feeding by index sees (the signature's own is alphabetical)."""
    position = {int(detail["index"]): rank for rank, detail in enumerate(positional)}
    return sorted(signature.items(), key=lambda item: position.get(int(item[1]["index"]), 0))


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


