"""int8 TANH outputs on the range their inputs can reach, not the fixed [-1, 1); int8 RSQRT
outputs capped at 1/sqrt(their input's first level above zero) (`_cap_rsqrt`).

The TFLite quantizer gives every int8 TANH output the fixed range [-1, 1) (scale 1/128),
whatever the calibration saw. A tanh whose input was calibrated to [-0.49, 0.66] can only
produce [-0.45, 0.58], so half of its 256 levels are never used and the next convolution
reads a grid twice as coarse as it needs. LiteRT's int8 TANH kernel takes any output scale
(its lookup table is built from both tensors' parameters), and litert-torch's files use
calibrated ranges there. LOGISTIC is left alone: its int8 kernel refuses any output scale
but 1/256 ("output->params.scale == 1. / 256 was not true", measured). On the unseen ESPCN
(two tanh layers) this alone is 30.0 -> 31.8 dB SNR, at the same latency
(docs/benchmarks.md).

The narrowed range is f(the input's representable range): every output the op can produce
still fits, so nothing is clipped; only the step shrinks. A convolution's int32 bias is
stored in units of input scale x weight scale, so each consumer's bias is rescaled with the
new input scale. Ops are only narrowed where that is all that depends on the scale: every
consumer a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED reading it as its data input (a
RESHAPE or CONCATENATION would need its own output to follow), not a graph output (an app
may assume the usual fixed scale), and each consumer's bias read by it alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mobilize.exporter.tflite_compact import packed

INT8_LEVELS = 255  # steps between -128 and 127
_INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class NarrowedActivation:
    """One op whose int8 output range was narrowed (metadata.json int8_ranges)."""

    op: str  # "TANH"
    tensor: str
    fixed_range: tuple[float, float]
    narrowed_range: tuple[float, float]

    @property
    def step_ratio(self) -> float:
        """How much finer the new grid is than the fixed one (2.0: half the step)."""
        return ((self.fixed_range[1] - self.fixed_range[0])
                / (self.narrowed_range[1] - self.narrowed_range[0]))

    def to_json(self) -> dict[str, object]:
        return {"op": self.op, "tensor": self.tensor,
                "fixed_range": [round(v, 6) for v in self.fixed_range],
                "narrowed_range": [round(v, 6) for v in self.narrowed_range],
                "step_ratio": round(self.step_ratio, 3)}


# Bias input index of the consumers whose only scale-dependent part is their bias.
_BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2}


def narrow_fixed_output_ranges(content: bytes) -> tuple[bytes, tuple[NarrowedActivation, ...]]:
    """`content` with its int8 TANH outputs on their reachable range, and what was
    narrowed; the input itself when nothing could be."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    functions: dict[str, Callable[[np.ndarray], np.ndarray]] = {"TANH": np.tanh}
    narrowed: list[NarrowedActivation] = []
    for subgraph in model.subgraphs:
        graph = _Graph(model, subgraph, names, schema)
        for op in subgraph.operators:
            kind = graph.op_name(op)
            done = None
            if kind in functions:
                done = _narrow(graph, op, kind, functions[kind])
            elif kind == "RSQRT":
                done = _cap_rsqrt(graph, op)
            if done is not None:
                narrowed.append(done)
    if not narrowed:
        return content, ()
    return packed(model), tuple(narrowed)


class _Graph:
    """One subgraph with who reads each tensor, built once: the checks below ask it for
    every tanh and every consumer."""

    def __init__(self, model, subgraph, names: dict[int, str], schema) -> None:
        self.model, self.subgraph, self.schema, self._names = model, subgraph, schema, names
        self.readers: dict[int, list] = {}
        for op in subgraph.operators:
            for index in set(op.inputs if op.inputs is not None else ()):
                self.readers.setdefault(int(index), []).append(op)

    def op_name(self, op) -> str:
        code = self.model.operatorCodes[op.opcodeIndex]
        return self._names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    def buffer_users(self, buffer: int) -> int:
        return sum(1 for tensor in self.subgraph.tensors if tensor.buffer == buffer)


def _narrow(graph: _Graph, op, kind: str,
            function: Callable[[np.ndarray], np.ndarray]) -> NarrowedActivation | None:
    model, subgraph, schema = graph.model, graph.subgraph, graph.schema
    tensors = _int8_per_tensor_io(graph, op)
    if tensors is None:
        return None
    source, target = tensors
    consumers = graph.readers.get(int(op.outputs[0]), [])
    biases = [_bias_of(graph, other, op.outputs[0]) for other in consumers]
    if not consumers or any(bias is False for bias in biases):
        return None
    fixed = _range_of(target)
    low, high = (float(v) for v in function(np.asarray(_range_of(source), np.float64)))
    low, high = min(low, 0.0), max(high, 0.0)  # an int8 grid must hold zero exactly
    scale = (high - low) / INT8_LEVELS
    old_scale = float(target.quantization.scale[0])
    if not 0 < scale < old_scale:
        return None
    rescaled = [_rescaled_bias(model, subgraph, bias, old_scale / scale)
                for bias in biases if bias is not None]
    if any(values is None for values in rescaled):
        return None  # a bias would overflow int32 with the finer step: keep the fixed range
    for bias, values in zip((b for b in biases if b is not None), rescaled, strict=True):
        tensor = subgraph.tensors[bias]
        if graph.buffer_users(tensor.buffer) > 1:
            # the converter stores equal constants once (all-zero biases of equal width):
            # this bias gets a buffer of its own
            model.buffers.append(schema.BufferT())
            tensor.buffer = len(model.buffers) - 1
        model.buffers[tensor.buffer].data = np.frombuffer(values.tobytes(), np.uint8)
        tensor.quantization.scale = np.asarray(tensor.quantization.scale, np.float32) * (
            scale / old_scale)
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    target.quantization.scale = np.asarray([scale], np.float32)
    target.quantization.zeroPoint = np.asarray([zero_point], np.int64)
    return NarrowedActivation(kind, _name(target), fixed, _range_of(target))


# Consumers of an RSQRT that requantize from both tensors' scales at prepare time
_RESCALING = frozenset({"MUL", "ADD", "SUB"})


def _cap_rsqrt(graph: _Graph, op) -> NarrowedActivation | None:
    """An int8 RSQRT's output on [0, 1/sqrt(its input's first level above zero)].

    The converter gives it the calibrated range, whose top is 1/sqrt(eps) (316 for 1e-5)
    wherever a channel is flat in some image: AdaIN's live channels, 1/std of 3 to 5, then
    got steps of 1.24. Only inputs on the zero level (a variance that rounds to nothing, whose
    centered values are themselves near zero) now saturate at the cap. Trained AdaIN 64x64:
    7.8 -> 16 dB (docs/benchmarks.md)."""
    tensors = _int8_per_tensor_io(graph, op)
    if tensors is None:
        return None
    source, target = tensors
    consumers = graph.readers.get(int(op.outputs[0]), [])
    if not consumers or any(graph.op_name(other) not in _RESCALING for other in consumers):
        return None
    fixed = _range_of(target)
    low_input, high_input = _range_of(source)
    high = rsqrt_cap(low_input, high_input, float(source.quantization.scale[0]), fixed)
    if high is None:
        return None
    target.quantization.scale = np.asarray([high / INT8_LEVELS], np.float32)
    target.quantization.zeroPoint = np.asarray([-128], np.int64)
    return NarrowedActivation("RSQRT", _name(target), fixed, _range_of(target))


def rsqrt_cap(low_input: float, high_input: float, step: float,
              output_range: tuple[float, float]) -> float | None:
    """The top an int8 RSQRT's output is capped to, or None where it keeps its range: the
    input's grid must hold zero (a variance on the zero level is what saturates), and the
    cap 1/sqrt(step) must be under the calibrated top of a non-negative output range. The
    fake quantization rounds its RSQRT by the same rule (ActivationQuant.cap_as_rsqrt_of)."""
    if high_input <= 0 or low_input > step or output_range[0] < 0:
        return None
    high = 1.0 / float(np.sqrt(step))
    return high if high < output_range[1] else None


def _int8_per_tensor_io(graph: _Graph, op) -> tuple[object, object] | None:
    """(input, output) tensors of an op whose int8 output range may be rewritten: both
    quantized per tensor, the output not a graph output (an app may assume its scale)."""
    subgraph = graph.subgraph
    source, target = subgraph.tensors[op.inputs[0]], subgraph.tensors[op.outputs[0]]
    if (target.type != graph.schema.TensorType.INT8 or not _per_tensor(source)
            or not _per_tensor(target) or op.outputs[0] in list(subgraph.outputs)):
        return None
    return source, target


def _per_tensor(tensor) -> bool:
    quant = tensor.quantization
    return quant is not None and quant.scale is not None and len(quant.scale) == 1


def _range_of(tensor) -> tuple[float, float]:
    scale, zero_point = float(tensor.quantization.scale[0]), int(tensor.quantization.zeroPoint[0])
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


def _name(tensor) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


def _bias_of(graph: _Graph, consumer, tensor: int) -> int | None | bool:
    """The consumer's bias tensor index, None when it has none, False when the consumer
    cannot follow a new input scale (another op type, the tensor is not its data input, or
    another op reads the same bias tensor)."""
    inputs, kind = list(consumer.inputs), graph.op_name(consumer)
    if kind not in _BIAS_INPUT or inputs.index(tensor) != 0:
        return False
    at = _BIAS_INPUT[kind]
    if len(inputs) <= at or inputs[at] < 0:
        return None
    bias = inputs[at]
    tensor_t = graph.subgraph.tensors[bias]
    if (tensor_t.type != graph.schema.TensorType.INT32
            or len(graph.readers.get(int(bias), [])) != 1
            or graph.model.buffers[tensor_t.buffer].data is None):
        return False
    return bias


def _rescaled_bias(model, subgraph, bias: int, factor: float) -> np.ndarray | None:
    data = model.buffers[subgraph.tensors[bias].buffer].data
    values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.int32).astype(np.float64)
    rescaled = np.round(values * factor)
    if rescaled.size and (rescaled.max() > _INT32.max or rescaled.min() < _INT32.min):
        return None
    return rescaled.astype(np.int32)
