"""A quantized .tflite with each distinct quantization table and vector stored once.

The TFLite converter writes a QuantizationParameters table for every tensor, with its own
scale and zero-point vectors. Per-channel weights and biases carry one float32 scale and one
int64 zero point (always 0) per output channel, so a depthwise convolution spends about 24
bytes of quantization vectors per channel against 9 bytes of int8 weights
(benchmarks/int8_size_breakdown.py): on a MobileNet-style generator that is 30% of the int8
file. FlatBuffers let any number of tables point at one vector, so equal vectors (the zero
points of every tensor of one width, activations with equal scales) are written once and
shared. Every tensor still reads exactly the values it had; only where they lie in the file
changes, so outputs are bit for bit the same (tests/exporter/test_tflite_compact.py).

The re-serialisation uses TensorFlow's object API for the schema (flatbuffer_utils), which
round-trips every field, signatures and metadata included; no library shares vectors.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

# The converter aligns constant buffers to 16 bytes (kernels may read them with SIMD loads);
# the object API's own builder would align them to 1.
BUFFER_ALIGNMENT = 16
_SHARED_VECTOR_TYPES = (np.dtype(np.float32), np.dtype(np.int64))  # scale, zero_point


def with_shared_quantization(content: bytes) -> bytes:
    """`content` with equal quantization tables and vectors stored once; the input itself
    when that would not make the file smaller (a float model has nothing to share)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    if not _share_quantization_tables(model):
        return content
    compact = packed(model)
    return compact if len(compact) < len(content) else content


def packed(model) -> bytes:
    """An object-API ModelT as .tflite bytes: buffers aligned as the converter aligns them,
    equal quantization vectors stored once."""
    builder = _SharingBuilder()
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _PackedOnce:
    """Stands for a QuantizationParametersT in TensorT.Pack: the table is written once and
    its offset reused by every tensor holding this object."""

    def __init__(self, quant) -> None:
        self.quant, self.offset = quant, None

    def Pack(self, builder) -> int:  # noqa: N802 - the object API's name
        if self.offset is None:
            self.offset = self.quant.Pack(builder)
        return self.offset


def quantization_key(quant) -> tuple:
    """Everything a QuantizationParametersT holds, as bytes: equal keys, equal tables."""
    def raw(values) -> bytes | None:
        return None if values is None else np.asarray(values).tobytes()

    return (raw(quant.min), raw(quant.max), raw(quant.scale), raw(quant.zeroPoint),
            quant.quantizedDimension, quant.detailsType)


def _share_quantization_tables(model) -> bool:
    """Give tensors with equal quantization one table object; True when any was quantized.
    Tables with custom details (none that the converter writes for int8) are left alone."""
    quantized = False
    for subgraph in model.subgraphs:
        packed: dict[tuple, _PackedOnce] = {}
        for tensor in subgraph.tensors:
            if tensor.quantization is None or tensor.quantization.details is not None:
                continue
            if tensor.quantization.scale is not None:
                quantized = True
            key = quantization_key(tensor.quantization)
            tensor.quantization = packed.setdefault(key, _PackedOnce(tensor.quantization))
    return quantized


class _SharingBuilder(flatbuffers.Builder):
    """Stores equal float32/int64 numpy vectors (the quantization vectors' types) once.
    uint8 vectors are buffer data: never shared (a tool may patch one in place) and aligned
    as the converter aligns them."""

    def __init__(self) -> None:
        super().__init__(1024)
        self.stored: dict[tuple[str, bytes], int] = {}

    def CreateNumpyVector(self, x: np.ndarray) -> int:  # noqa: N802 - flatbuffers' name
        if x.dtype == np.uint8:
            return self._aligned_bytes(x)
        if x.dtype not in _SHARED_VECTOR_TYPES:
            return super().CreateNumpyVector(x)
        key = (x.dtype.str, x.tobytes())
        if key not in self.stored:
            self.stored[key] = super().CreateNumpyVector(x)
        return self.stored[key]

    def _aligned_bytes(self, x: np.ndarray) -> int:
        self.StartVector(1, x.size, BUFFER_ALIGNMENT)
        self.head -= x.size
        self.Bytes[self.head:self.head + x.size] = x.tobytes()
        self.vectorNumElems = x.size
        return self.EndVector()
