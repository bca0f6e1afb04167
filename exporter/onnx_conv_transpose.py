"""ConvTranspose as a convolution and DEPTH_TO_SPACE (sub-pixel convolution), for int8.

Measured on the unseen pix2pix UNet-256 (eight 4x4 stride-2 ConvTranspose): its int8 file
ran 3x SLOWER than fp32 (38 vs 12 ms, 2 threads; 27 ms without XNNPACK, 57 vs 20 ms on one
thread), and FSRCNN's one 9x9 deconvolution made its int8 file as slow as fp32: LiteRT's
int8 TRANSPOSE_CONV is far slower than its int8 CONV_2D. A stride-s transposed convolution
is exactly s x s ordinary convolutions of the input, one per output phase, interleaved;
written as one Conv per phase (each with only its own taps: 4x4 stride 2 gives four 2x2
convolutions, the same weights and a quarter of the multiply-adds each), their outputs
concatenated in DCR order, DepthToSpace(s), and a Slice where the phases overshoot the
output size, it runs as CONV_2D + CONCATENATION + DEPTH_TO_SPACE, which XNNPACK runs in
int8. Exact in float (tests/exporter/test_onnx_conv_transpose.py, onnxruntime). One Conv
over the phases' common window (s*s*C_out channels) was tried first: one op fewer, but its
kernel holds zeros where a phase has fewer taps (4x4 stride 2: 4 of 9 used), which made
pix2pix's int8 file 2.25x larger in those layers (0.45x fp32 at 64x64, over the 0.3x
target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mobilize.exporter.onnx_graph import concat_in_groups, rewrite_nodes
from mobilize.exporter.onnx_norm import _static_shapes


def conv_transpose_as_depth_to_space(model: onnx.ModelProto) -> onnx.ModelProto:
    """Each 2-D ConvTranspose (group 1, no dilation, equal strides, constant weights, static
    input shape) -> one Conv per output phase, Concat, DepthToSpace(DCR) (+ Slice)."""
    shapes = _static_shapes(model)
    return rewrite_nodes(model, lambda n, g, c: _as_sub_pixel(n, g, c, shapes))


def _as_sub_pixel(node: onnx.NodeProto, graph: onnx.GraphProto,
                  constants: dict[str, np.ndarray],
                  shapes: dict[str, tuple[int, ...]]) -> list[onnx.NodeProto] | None:
    if node.op_type != "ConvTranspose" or node.input[1] not in constants:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    weight = constants[node.input[1]]  # (C_in, C_out, kH, kW)
    shape = shapes.get(node.input[0])
    strides = list(attrs.get("strides", [1, 1]))
    if (weight.ndim != 4 or shape is None or len(shape) != 4 or attrs.get("group", 1) != 1
            or any(d != 1 for d in attrs.get("dilations", [1, 1])) or "output_shape" in attrs
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or len(set(strides)) != 1 or strides[0] < 2
            or (len(node.input) > 2 and node.input[2] and node.input[2] not in constants)):
        return None
    stride = strides[0]
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    extra = list(attrs.get("output_padding", [0, 0]))
    axes = [_axis_plan(shape[2 + a], weight.shape[2 + a], stride, pads[a], pads[a + 2], extra[a])
            for a in range(2)]
    if any(plan is None for plan in axes):
        return None
    rows, cols = axes[0], axes[1]
    assert rows is not None and cols is not None
    bias = constants[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(
        weight.shape[1], weight.dtype)
    p = (node.name or node.output[0]).replace("/", "_") + "_sub_pixel"
    made, phases = [], []
    for ry, row in enumerate(rows.phases):
        for rx, col in enumerate(cols.phases):  # DCR: phase (ry, rx) is channel block ry*s+rx
            name = f"{p}_{ry}_{rx}"
            kernel = weight[:, :, row.taps][:, :, :, col.taps].transpose(1, 0, 2, 3)
            graph.initializer.extend([
                numpy_helper.from_array(np.ascontiguousarray(kernel), f"{name}_weight"),
                numpy_helper.from_array(bias, f"{name}_bias")])
            phases.append(f"{name}_out")
            made.append(helper.make_node(
                "Conv", [node.input[0], f"{name}_weight", f"{name}_bias"], [phases[-1]],
                kernel_shape=list(kernel.shape[2:]),
                pads=[row.pad_low, col.pad_low, row.pad_high, col.pad_high]))
    overshoot = rows.overshoot or cols.overshoot
    spread = f"{p}_spread" if overshoot else node.output[0]
    concat_in_groups(made, phases, 1, f"{p}_phases")  # stride 3: 9 phases
    made += [helper.make_node("DepthToSpace", [f"{p}_phases"], [spread], blocksize=stride,
                              mode="DCR")]
    if overshoot:
        graph.initializer.extend([
            numpy_helper.from_array(np.array([0, 0], np.int64), f"{p}_starts"),
            numpy_helper.from_array(np.array([rows.length, cols.length], np.int64),
                                    f"{p}_ends"),
            numpy_helper.from_array(np.array([2, 3], np.int64), f"{p}_axes")])
        made.append(helper.make_node("Slice", [spread, f"{p}_starts", f"{p}_ends",
                                               f"{p}_axes"], [node.output[0]]))
    return made


@dataclass(frozen=True)
class _Phase:
    """One output phase r of one axis: the transposed kernel's taps it reads, in the order
    its own kernel holds them (kernel index j reads input q - pad_low + j), and its padding."""

    taps: list[int]
    pad_low: int
    pad_high: int


@dataclass(frozen=True)
class _AxisPlan:
    phases: list[_Phase]
    length: int  # the ConvTranspose's output size on this axis
    overshoot: bool  # the phases produce more than `length` rows: a Slice trims them


def _axis_plan(extent: int, k: int, stride: int, pad_begin: int, pad_end: int,
               output_padding: int) -> _AxisPlan | None:
    """Output y = stride * q + r reads input q + t // stride - m through tap
    (t % stride) + stride * m, with t = r + pad_begin (ONNX: y = stride * i + tap - pad).
    Every phase produces the same number of rows (they are concatenated), at least
    ceil(length / stride)."""
    length = stride * (extent - 1) + output_padding + k - pad_begin - pad_end
    reads: list[list[tuple[int, int]]] = []  # per phase: (input offset, tap), offsets rising
    for r in range(stride):
        t = r + pad_begin
        count = (k - t % stride + stride - 1) // stride
        reads.append([(t // stride - m, t % stride + stride * m)
                      for m in reversed(range(count))])
    # a phase with no tap, or one whose first read lies past the input's first row (a Conv
    # cannot pad negatively), is not this rewrite's case
    if length < 1 or any(not phase or phase[0][0] > 0 for phase in reads):
        return None
    rows = max(-(-length // stride), *(extent - phase[-1][0] for phase in reads))
    phases = [_Phase(taps=[tap for _, tap in phase], pad_low=-phase[0][0],
                     pad_high=rows - extent + phase[-1][0]) for phase in reads]
    return _AxisPlan(phases, length, rows * stride > length)
