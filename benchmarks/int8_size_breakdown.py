"""Where the bytes of an int8 .tflite go, beside its fp32 file (issue 14: int8 <= 0.3x fp32).

    nice python -m benchmarks.int8_size_breakdown [--size 64] [--calib-samples 8]
        [--json PATH] [NAME ...]

Each family of tests/exporter/unseen_families.py (default: all) at its `usual_size` (or
--size: the weights, and so the sizes, do not depend on it, but for pix2pix, whose depth
follows the size) is exported as benchmarks/unseen_suite exports it: tflite-fp32 +
tflite-int8, the defaults, no int8 alternatives. Both flatbuffers are then walked table by
table (tensorflow's schema_py_generated) and every byte is given to one category: constant
buffers by the type of the tensor that reads them, quantization vectors and tables
(per-channel or per-tensor), tensor names, tensor/buffer/op tables, signature, metadata.
Bytes no table names are flatbuffer overhead (root tables, alignment padding).

Prints per family the bytes by category of each file, int8/fp32, the floor (int8 weights +
int32 biases over the fp32 file), what depthwise convolutions spend on quantization
parameters per weight, duplicated buffers and quantization vectors (the exporter stores
each distinct one once: exporter/tflite_compact.py, found with this breakdown) and the
int8 file's SNR on the suite's held-out photographs.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.unseen_suite import (  # noqa: E402 - the suite's own helpers, not copies
    HELD_OUT,
    _outputs,
    _photos,
    _snr_db,
    _to_range,
)
from mobilize.contract.specs import ValueRange  # noqa: E402
from mobilize.exporter.config import ExportConfig, Target  # noqa: E402
from mobilize.exporter.pipeline import run_export  # noqa: E402
from mobilize.photos import HELD_OUT_PHOTOS  # noqa: E402
from tests.exporter.unseen_families import FAMILIES  # noqa: E402

WEIGHTS = "int8 weights"
BIASES = "int32 biases"
FLOAT_CONSTS = "float32 consts"
INT_CONSTS = "int consts (shapes, sizes)"
OTHER_CONSTS = "other consts"
UNUSED = "unused buffers"
QUANT_CHANNEL = "quant params per-channel"
QUANT_TENSOR = "quant params per-tensor"
NAMES = "tensor names"
TENSOR_TABLES = "tensor tables + shapes"
BUFFER_TABLES = "buffer tables"
OP_TABLES = "op tables"
SIGNATURE = "signature"
METADATA = "metadata"
OVERHEAD = "flatbuffer overhead"
CATEGORIES = (WEIGHTS, BIASES, FLOAT_CONSTS, INT_CONSTS, OTHER_CONSTS, UNUSED, QUANT_CHANNEL,
              QUANT_TENSOR, NAMES, TENSOR_TABLES, BUFFER_TABLES, OP_TABLES, SIGNATURE, METADATA,
              OVERHEAD)
FLOOR = (WEIGHTS, BIASES)  # what an int8 file cannot do without

# tflite schema field slots in a table's vtable: 4 + 2 * (field's index in schema.fbs)
MODEL_DESCRIPTION, MODEL_BUFFERS, MODEL_METADATA_BUFFER = 10, 12, 14
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS, SUBGRAPH_NAME = (
    4, 6, 8, 10, 12)
TENSOR_SHAPE, TENSOR_NAME, TENSOR_SHAPE_SIGNATURE = 4, 10, 18
QUANT_MIN, QUANT_MAX, QUANT_SCALE, QUANT_ZERO_POINT = 4, 6, 8, 10
BUFFER_DATA = 4
OPERATOR_INPUTS, OPERATOR_OUTPUTS, OPERATOR_OPTIONS, OPERATOR_CUSTOM = 6, 8, 12, 14
NAME_FIELD = 4  # Metadata.name, TensorMap.name
SIGNATURE_INPUTS, SIGNATURE_OUTPUTS, SIGNATURE_KEY = 4, 6, 8

# (output_shape, weights, input, bias): the one op whose bias is not input 2
BIAS_INPUT = {"TRANSPOSE_CONV": 3}

CALIB_SAMPLES = 8  # the suite's documented run (docs/benchmarks.md)


def _schema():
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def _names_of(enum: type) -> dict[int, str]:
    return {value: key for key, value in vars(enum).items() if not key.startswith("_")}


# --------------------------------------------------------------------------- export


def export_pair(name: str, model, size: int, calib_samples: int,
                work: Path) -> dict[str, bytes]:
    """fp32 and int8 files of `model` exported as benchmarks/unseen_suite.measure does."""
    family = FAMILIES[name]
    low, high = family.input_range
    result = run_export(ExportConfig(
        model_ref=name, module=model, out_dir=work / name,
        targets=(Target.FP32, Target.INT8),
        input_shapes=tuple((1, 3, size, size) for _ in family.input_names),
        input_names=family.input_names, input_ranges=(ValueRange(low, high),),
        output_range=ValueRange(*family.output_range), calib_samples=calib_samples,
        verify_samples=2, int8_alternatives=False))
    return {key: (result.out_dir / f"model_{key}.tflite").read_bytes()
            for key in ("fp32", "int8")}


def held_out_snr(name: str, model, size: int) -> Callable[[bytes], float]:
    """SNR (dB) of a file against PyTorch on the suite's held-out photographs."""
    import torch

    family = FAMILIES[name]
    unit = _photos(HELD_OUT_PHOTOS, HELD_OUT, size, seed=7)
    inputs = [_to_range(np.roll(unit, shift, axis=0), *family.input_range)
              for shift in range(len(family.input_names))]
    with torch.no_grad():
        reference = model(*(torch.from_numpy(x) for x in inputs)).numpy()
    return lambda content: _snr_db(reference, _outputs(content, family, inputs, reference))


# --------------------------------------------------------------------------- byte spans


Span = tuple[int, int]


def vector_span(tab, slot: int, item_size: int, terminator: int = 0) -> Span | None:
    """[start, end) of a vector (or string: terminator 1) field, its length prefix included."""
    offset = tab.Offset(slot)
    if not offset:
        return None
    start = tab.Vector(offset)
    return start - 4, start + tab.VectorLen(offset) * item_size + terminator


def table_spans(tab) -> list[Span]:
    """A table's inline fields and its vtable (shared vtables are counted where first seen)."""
    vtable = tab.Pos - struct.unpack_from("<i", tab.Bytes, tab.Pos)[0]
    vtable_size, inline_size = struct.unpack_from("<HH", tab.Bytes, vtable)
    return [(tab.Pos, tab.Pos + inline_size), (vtable, vtable + vtable_size)]


def union_table(tab, slot: int):
    """The table a union field points to, or None."""
    from flatbuffers.table import Table

    offset = tab.Offset(slot)
    return None if not offset else Table(tab.Bytes, tab.Indirect(offset + tab.Pos))


class ByteMap:
    """One category per byte of the file; the first category to claim a byte keeps it, so a
    vector or vtable shared by two tables is counted once."""

    def __init__(self, content: bytes) -> None:
        self.labels = np.full(len(content), -1, np.int8)

    def claim(self, span: Span | None, category: str) -> None:
        if span is not None:
            view = self.labels[span[0]:span[1]]
            view[view < 0] = CATEGORIES.index(category)

    def claim_table(self, tab, category: str) -> None:
        for span in table_spans(tab):
            self.claim(span, category)

    def totals(self) -> dict[str, int]:
        counts = np.bincount(self.labels + 1, minlength=len(CATEGORIES) + 1)
        totals = {category: int(counts[i + 1]) for i, category in enumerate(CATEGORIES)}
        totals[OVERHEAD] += int(counts[0])
        return totals


# --------------------------------------------------------------------------- attribution


@dataclass
class FileBreakdown:
    size: int
    bytes_by_category: dict[str, int]
    float_consts: list[dict[str, object]]  # float32 constants: tensor, shape, bytes, readers
    duplicate_buffer_bytes: int  # buffer data equal to an earlier buffer's
    duplicate_quant_bytes: int  # quantization vectors equal to an earlier one (with prefix)
    depthwise: dict[str, int]
    convolutions: dict[str, int]
    empty_buffers: int  # buffers without data beside buffer 0 (one per activation)
    name_bytes_internal: int  # names of tensors that are neither model inputs nor outputs
    per_channel_scales: int  # scale values of all per-channel tensors (weights and biases)

    @property
    def floor(self) -> int:
        return sum(self.bytes_by_category[c] for c in FLOOR)


@dataclass
class _Graph:
    """What the tensors are and who reads them, for one subgraph."""

    tensors: list
    readers: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    tensors_of_buffer: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))


def _graph(model, subgraph) -> _Graph:
    schema = _schema()
    op_names = _names_of(schema.BuiltinOperator)
    graph = _Graph([subgraph.Tensors(i) for i in range(subgraph.TensorsLength())])
    for index, tensor in enumerate(graph.tensors):
        graph.tensors_of_buffer[tensor.Buffer()].append(index)
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        name = op_names.get(model.OperatorCodes(op.OpcodeIndex()).BuiltinCode(), "CUSTOM")
        for tensor in op.InputsAsNumpy() if op.InputsLength() else ():
            if tensor >= 0:
                graph.readers[int(tensor)].append(name)
    return graph


def _const_category(tensor, metadata_buffer: bool) -> str:
    types = _schema().TensorType
    if metadata_buffer:
        return METADATA
    if tensor is None:
        return UNUSED
    quantized = tensor.Quantization() is not None and tensor.Quantization().ScaleLength() > 0
    kind = tensor.Type()
    if kind in (types.INT8, types.UINT8):
        return WEIGHTS
    if kind == types.INT32 and quantized:
        return BIASES
    if kind == types.FLOAT32:
        return FLOAT_CONSTS
    if kind in (types.INT32, types.INT64):
        return INT_CONSTS
    return OTHER_CONSTS


def _claim_buffers(model, graph: _Graph, metadata_buffers: set[int], spans: ByteMap) -> None:
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        readers = graph.tensors_of_buffer.get(index)
        tensor = graph.tensors[readers[0]] if readers else None
        spans.claim(vector_span(buffer._tab, BUFFER_DATA, 1),
                    _const_category(tensor, index in metadata_buffers))
        spans.claim_table(buffer._tab, BUFFER_TABLES)
    spans.claim(vector_span(model._tab, MODEL_BUFFERS, 4), BUFFER_TABLES)


def _claim_quantization(quant, spans: ByteMap) -> None:
    category = QUANT_CHANNEL if quant.ScaleLength() > 1 else QUANT_TENSOR
    for slot, size in ((QUANT_SCALE, 4), (QUANT_ZERO_POINT, 8), (QUANT_MIN, 4), (QUANT_MAX, 4)):
        spans.claim(vector_span(quant._tab, slot, size), category)
    spans.claim_table(quant._tab, category)


def _claim_tensors(graph: _Graph, spans: ByteMap) -> None:
    for tensor in graph.tensors:
        tab = tensor._tab
        spans.claim(vector_span(tab, TENSOR_NAME, 1, terminator=1), NAMES)
        if tensor.Quantization() is not None:
            _claim_quantization(tensor.Quantization(), spans)
        spans.claim(vector_span(tab, TENSOR_SHAPE, 4), TENSOR_TABLES)
        spans.claim(vector_span(tab, TENSOR_SHAPE_SIGNATURE, 4), TENSOR_TABLES)
        spans.claim_table(tab, TENSOR_TABLES)


def _claim_operators(model, subgraph, spans: ByteMap) -> None:
    for i in range(model.OperatorCodesLength()):
        spans.claim_table(model.OperatorCodes(i)._tab, OP_TABLES)
    for i in range(subgraph.OperatorsLength()):
        tab = subgraph.Operators(i)._tab
        for slot in (OPERATOR_INPUTS, OPERATOR_OUTPUTS):
            spans.claim(vector_span(tab, slot, 4), OP_TABLES)
        spans.claim(vector_span(tab, OPERATOR_CUSTOM, 1), OP_TABLES)
        options = union_table(tab, OPERATOR_OPTIONS)
        if options is not None:
            spans.claim_table(options, OP_TABLES)
        spans.claim_table(tab, OP_TABLES)
    for slot in (SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS):
        spans.claim(vector_span(subgraph._tab, slot, 4), OP_TABLES)


def _claim_signatures_and_metadata(model, spans: ByteMap) -> None:
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        spans.claim(vector_span(signature._tab, SIGNATURE_KEY, 1, terminator=1), SIGNATURE)
        for slot, count, get in ((SIGNATURE_INPUTS, signature.InputsLength(), signature.Inputs),
                                 (SIGNATURE_OUTPUTS, signature.OutputsLength(),
                                  signature.Outputs)):
            spans.claim(vector_span(signature._tab, slot, 4), SIGNATURE)
            for j in range(count):
                entry = get(j)._tab
                spans.claim(vector_span(entry, NAME_FIELD, 1, terminator=1), SIGNATURE)
                spans.claim_table(entry, SIGNATURE)
        spans.claim_table(signature._tab, SIGNATURE)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)._tab
        spans.claim(vector_span(entry, NAME_FIELD, 1, terminator=1), METADATA)
        spans.claim_table(entry, METADATA)
    spans.claim(vector_span(model._tab, MODEL_DESCRIPTION, 1, terminator=1), METADATA)
    spans.claim(vector_span(model._tab, MODEL_METADATA_BUFFER, 4), METADATA)


def breakdown(content: bytes) -> FileBreakdown:
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    spans = ByteMap(content)
    metadata_buffers = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    graphs = [_graph(model, model.Subgraphs(i)) for i in range(model.SubgraphsLength())]
    # one subgraph in every file here; buffers are typed through the first
    _claim_buffers(model, graphs[0], metadata_buffers, spans)
    _claim_signatures_and_metadata(model, spans)
    for i, graph in enumerate(graphs):
        subgraph = model.Subgraphs(i)
        _claim_tensors(graph, spans)
        spans.claim(vector_span(subgraph._tab, SUBGRAPH_TENSORS, 4), TENSOR_TABLES)
        _claim_operators(model, subgraph, spans)
        spans.claim(vector_span(subgraph._tab, SUBGRAPH_NAME, 1, terminator=1), NAMES)
    main = model.Subgraphs(0)
    return FileBreakdown(
        size=len(content), bytes_by_category=spans.totals(),
        float_consts=_float_consts(model, graphs[0], metadata_buffers),
        duplicate_buffer_bytes=_duplicate_buffer_bytes(model, metadata_buffers),
        duplicate_quant_bytes=_duplicate_quant_bytes(graphs[0]),
        depthwise=_conv_quant_cost(model, main, graphs[0], {"DEPTHWISE_CONV_2D"}),
        convolutions=_conv_quant_cost(model, main, graphs[0],
                                      {"CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"}),
        empty_buffers=sum(1 for i in range(1, model.BuffersLength())
                          if model.Buffers(i).DataLength() == 0),
        name_bytes_internal=_internal_name_bytes(main, graphs[0]),
        per_channel_scales=sum(t.Quantization().ScaleLength() for t in graphs[0].tensors
                               if t.Quantization() and t.Quantization().ScaleLength() > 1))


# --------------------------------------------------------------------------- details


def _float_consts(model, graph: _Graph, metadata_buffers: set[int]) -> list[dict[str, object]]:
    types = _schema().TensorType
    found = []
    for index, tensor in enumerate(graph.tensors):
        data = model.Buffers(tensor.Buffer()).DataLength()
        if tensor.Type() == types.FLOAT32 and data and tensor.Buffer() not in metadata_buffers:
            found.append({"tensor": tensor.Name().decode(), "bytes": data,
                          "shape": tensor.ShapeAsNumpy().tolist() if tensor.ShapeLength() else [],
                          "read_by": sorted(set(graph.readers.get(index, [])))})
    return found


def _duplicate_buffer_bytes(model, metadata_buffers: set[int]) -> int:
    seen: set[bytes] = set()
    duplicated = 0
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        if index in metadata_buffers or not buffer.DataLength():
            continue
        data = buffer.DataAsNumpy().tobytes()
        duplicated += len(data) if data in seen else 0
        seen.add(data)
    return duplicated


def _duplicate_quant_bytes(graph: _Graph) -> int:
    """Bytes of quantization vectors (length prefix included) stored again with values equal
    to one stored earlier: what storing each distinct vector once would save. A vector that
    several tensors share (one place in the file) counts once."""
    seen: set[tuple[str, bytes]] = set()
    places: set[int] = set()
    duplicated = 0
    for tensor in graph.tensors:
        quant = tensor.Quantization()
        if quant is None:
            continue
        for kind, slot, values in (("scale", QUANT_SCALE, quant.ScaleAsNumpy),
                                   ("zero_point", QUANT_ZERO_POINT, quant.ZeroPointAsNumpy)):
            offset = quant._tab.Offset(slot)
            place = quant._tab.Vector(offset) if offset else 0
            if not offset or place in places or not quant._tab.VectorLen(offset):
                continue
            places.add(place)
            key = (kind, values().tobytes())
            duplicated += 4 + len(key[1]) if key in seen else 0
            seen.add(key)
    return duplicated


def _quant_vector_bytes(quant) -> int:
    if quant is None:
        return 0
    return sum(4 + n * size for n, size in ((quant.ScaleLength(), 4),
                                            (quant.ZeroPointLength(), 8),
                                            (quant.MinLength(), 4), (quant.MaxLength(), 4))
               if n)


def _conv_quant_cost(model, subgraph, graph: _Graph, kinds: set[str]) -> dict[str, int]:
    """Weights, biases and the quantization vectors of both, over the ops of `kinds`."""
    op_names = _names_of(_schema().BuiltinOperator)
    cost = Counter()
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        kind = op_names.get(model.OperatorCodes(op.OpcodeIndex()).BuiltinCode())
        if kind not in kinds:
            continue
        inputs = op.InputsAsNumpy().tolist()
        bias_input = BIAS_INPUT.get(kind, 2)
        weight = graph.tensors[inputs[1]]
        cost["ops"] += 1
        cost["weights"] += int(np.prod(weight.ShapeAsNumpy()))
        cost["channels"] += weight.Quantization().ScaleLength() if weight.Quantization() else 0
        cost["weight_bytes"] += model.Buffers(weight.Buffer()).DataLength()
        cost["quant_bytes"] += _quant_vector_bytes(weight.Quantization())
        if len(inputs) > bias_input and inputs[bias_input] >= 0:
            bias = graph.tensors[inputs[bias_input]]
            cost["bias_bytes"] += model.Buffers(bias.Buffer()).DataLength()
            cost["quant_bytes"] += _quant_vector_bytes(bias.Quantization())
    return dict(cost)


def _internal_name_bytes(subgraph, graph: _Graph) -> int:
    ends = set(subgraph.InputsAsNumpy().tolist()) | set(subgraph.OutputsAsNumpy().tolist())
    return sum(4 + len(tensor.Name()) + 1 for index, tensor in enumerate(graph.tensors)
               if index not in ends and tensor.Name())


# --------------------------------------------------------------------------- report


def measure(name: str, size: int, calib_samples: int) -> dict[str, object]:
    model = FAMILIES[name].build(size)
    with tempfile.TemporaryDirectory(prefix="int8-size-") as work:
        start = time.perf_counter()
        files = export_pair(name, model, size, calib_samples, Path(work))
        export_s = time.perf_counter() - start
    fp32, int8 = breakdown(files["fp32"]), breakdown(files["int8"])
    return {"family": name, "size": size, "export_s": round(export_s, 1),
            "fp32": asdict(fp32), "int8": asdict(int8),
            "ratio": int8.size / fp32.size, "floor_ratio": int8.floor / fp32.size,
            "structural": structural_floor(fp32, int8),
            "structural_ratio": sum(structural_floor(fp32, int8).values()) / fp32.size,
            "snr_db": held_out_snr(name, model, size)(files["int8"])}


def structural_floor(fp32: FileBreakdown, int8: FileBreakdown) -> dict[str, int]:
    """What an int8 file of this graph cannot go below, in parts: its weights and biases, one
    float32 scale per channel of every per-channel tensor (the runtime wants as many zero
    points, but those can be shared), and everything the fp32 file holds besides its float
    constants (names, tables, signature: the same graph)."""
    return {"weights": int8.bytes_by_category[WEIGHTS],
            "biases": int8.bytes_by_category[BIASES],
            "scales": 4 * int8.per_channel_scales,
            "fixed": fp32.size - fp32.bytes_by_category[FLOAT_CONSTS]}


def _kb(value: int) -> str:
    return f"{value / 1024:.1f}"


def category_table(row: dict) -> list[str]:
    fp32, int8 = row["fp32"], row["int8"]
    lines = [f"#### {row['family']} at {row['size']}x{row['size']}: int8 {_kb(int8['size'])} KB"
             f" / fp32 {_kb(fp32['size'])} KB = {row['ratio']:.3f} (floor "
             f"{row['floor_ratio']:.3f})", "",
             "| category | fp32 KB | int8 KB | share of int8 |", "| --- | ---: | ---: | ---: |"]
    for category in CATEGORIES:
        a, b = fp32["bytes_by_category"][category], int8["bytes_by_category"][category]
        if a or b:
            lines.append(f"| {category} | {_kb(a)} | {_kb(b)} | {b / int8['size']:.1%} |")
    lines.append(f"| total | {_kb(fp32['size'])} | {_kb(int8['size'])} | 100% |")
    return lines


def notes(row: dict) -> list[str]:
    int8 = row["int8"]
    lines = []
    for kind in ("depthwise", "convolutions"):
        cost = int8[kind]
        if cost.get("weights"):
            lines.append(f"- {kind}: {cost['ops']} ops, {cost['channels']} output channels, "
                         f"{cost['weight_bytes']} B int8 weights, {cost.get('bias_bytes', 0)} B "
                         f"int32 biases, {cost['quant_bytes']} B quant vectors of both "
                         f"({cost['quant_bytes'] / cost['weight_bytes']:.2f} B per weight, "
                         f"{cost['quant_bytes'] / cost['channels']:.1f} B per channel)")
    for const in int8["float_consts"]:
        lines.append(f"- float32 const in int8: {const['tensor']} {const['shape']} "
                     f"{const['bytes']} B, read by {', '.join(const['read_by']) or 'nothing'}")
    lines.append(f"- duplicated buffer data {int8['duplicate_buffer_bytes']} B, duplicated "
                 f"quant vectors {int8['duplicate_quant_bytes']} B, empty buffers "
                 f"{int8['empty_buffers']}, names of internal tensors "
                 f"{int8['name_bytes_internal']} B")
    parts = " + ".join(f"{part} {value / row['fp32']['size']:.3f}"
                       for part, value in row["structural"].items())
    lines.append(f"- structural floor (weights + biases + a float32 scale per channel + the "
                 f"fp32 file's non-weight bytes): {row['structural_ratio']:.3f} x fp32 = "
                 f"{parts}")
    return lines


def summary_table(rows: list[dict]) -> list[str]:
    lines = ["| family | size | fp32 KB | int8 KB | int8/fp32 | per-channel quant KB (share) |"
             " names KB | duplicated quant vectors KB | floor: weights+biases | structural floor |"
             " int8 SNR dB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        int8 = row["int8"]
        channel = int8["bytes_by_category"][QUANT_CHANNEL]
        lines.append(f"| {row['family']} | {row['size']} | {_kb(row['fp32']['size'])} | "
                     f"{_kb(int8['size'])} | {row['ratio']:.3f} | {_kb(channel)} "
                     f"({channel / int8['size']:.0%}) | {_kb(int8['bytes_by_category'][NAMES])}"
                     f" | {_kb(int8['duplicate_quant_bytes'])} | {row['floor_ratio']:.3f} | "
                     f"{row['structural_ratio']:.3f} | {row['snr_db']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"families (default all): {', '.join(FAMILIES)}")
    parser.add_argument("--size", type=int, default=None, help="input size (default usual)")
    parser.add_argument("--calib-samples", type=int, default=CALIB_SAMPLES)
    parser.add_argument("--json", type=Path, default=None, help="keep the figures here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    rows = []
    for name in args.names or list(FAMILIES):
        row = measure(name, args.size or FAMILIES[name].usual_size, args.calib_samples)
        rows.append(row)
        print("\n".join(["", *category_table(row), "", *notes(row)]), flush=True)
    print("\n".join(["", *summary_table(rows)]))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
