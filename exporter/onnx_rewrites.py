"""ONNX graph rewrites applied before onnx2tf, by name, in order.

Why `constants_to_initializers` exists: torch.onnx exports the scale and bias of
InstanceNorm2d(affine=False) as `Constant` nodes (ones and zeros), not as initializers.
onnx_graphsurgeon then hands them to onnx2tf as graph Variables (outputs of a node), and
onnx2tf 1.28.8's InstanceNormalization builder multiplies with them directly:
"Attempt to convert a value (Variable (.../Constant_output_0)) ... to a Tensor". Turning every
Constant node's value into an initializer gives the builder a real constant, and changes no
value in the graph.

`decompose_instance_norm` is a lever for int8 quality work: it writes InstanceNormalization
as ReduceMean/Sub/Mul/Add/Sqrt/Div so that each step is quantized on its own.
`decompose_group_norm` and `decompose_layer_norm` exist because onnx2tf cannot convert torch's
GroupNorm (a Reshape to rank 3 around InstanceNormalization; AnimeGANv2 stopped there): the
same plain ops on the 4-D tensor, a 1x1 Conv averaging the channel means within each group.

`prelu_as_relu` exists because the TFLite converter (TF 2.21) has no 16x8 kernel for PRELU
("Quantization to 16x8-bit not yet supported for op: 'PRELU'"), while RELU, SUB, MUL, ADD and
LEAKY_RELU all have one. In float the rewrite is exact.

`reflect_pad_as_slices` exists for speed: XNNPACK, the CPU delegate LiteRT applies by
default, has no MIRROR_PAD, so every ReflectionPad2d of a style net ran in LiteRT's own
kernel, which is slow, and cut the delegated graph there. Written as SLICE + CONCATENATION,
which XNNPACK runs: tiny_style at 256x256 went from ~50 to ~6 ms in fp32 and from ~45 to
~4 ms in int8, a random-init Johnson net from 40 to 23 ms and 28 to 9 ms (2 threads, this
CPU, docs/benchmarks.md). Exact in float and in int8 (slices and concatenation keep their
scale).
`nearest_upsample_as_depth_to_space` follows from the same fact: XNNPACK has no
RESIZE_NEAREST_NEIGHBOR either. As CONCATENATION + DEPTH_TO_SPACE (exact: each 2x2 block
repeats its pixel) tiny_style runs in one delegate partition instead of three, 15% faster.
The converter has no 16x8 kernel for DEPTH_TO_SPACE, so it goes to every target but
tflite-int16x8 (each target converts its own graph: config.PASS_TARGETS), as does
`pixel_shuffle_as_depth_to_space`: torch's PixelShuffle is DepthToSpace in CRD order, which
onnx2tf writes as RESHAPE/TRANSPOSE/RESHAPE; with the producing conv's output channels
reordered it is DCR, one DEPTH_TO_SPACE (ESPCN 128x128 int8 3.4 -> 2.1 ms).
`prelu_as_leaky_relu` is int8's PReLU: XNNPACK has no int8 PRELU and no int8 RELU, so PRELU
and `prelu_as_relu`'s form each cut the delegated int8 graph (Real-ESRGAN compact: 18
partitions, int8 slower than fp32); LEAKY_RELU, MUL and ADD all run in it. The float targets
keep PRELU, `prelu_as_relu` is int16x8's (docs/benchmarks.md, "Graphs per target").
`conv_transpose_as_depth_to_space` (exporter/onnx_conv_transpose.py) is int8's ConvTranspose:
LiteRT's int8 TRANSPOSE_CONV is slow (pix2pix UNet-256's int8 file 3x slower than fp32), its
CONV_2D is not; one Conv per output phase, concatenated and spread by DEPTH_TO_SPACE.
`standalone_relu_as_max_pool` is int8's ReLU where no conv or add can absorb it: XNNPACK has
no int8 RELU, and a 1x1 MAX_POOL_2D with the RELU fused is a clamp it runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mobilize.errors import UsageError
from mobilize.exporter.onnx_conv_transpose import conv_transpose_as_depth_to_space
from mobilize.exporter.onnx_graph import (
    concat_in_groups,
    constants_to_initializers,
    rewrite_nodes,
)
from mobilize.exporter.onnx_norm import (
    _static_shapes,
    consumers_of,
    decompose_group_norm,
    decompose_instance_norm,
    decompose_layer_norm,
    div_by_sqrt_as_rsqrt,
    sqrt_as_rsqrt,
)

RewritePass = Callable[[onnx.ModelProto], onnx.ModelProto]


def prelu_as_relu(model: onnx.ModelProto) -> onnx.ModelProto:
    """PRelu(x, a) -> LeakyRelu(x, a) for one shared slope, else Relu(x) + a * (x - Relu(x))."""
    return rewrite_nodes(model, lambda n, g, c: _prelu_rewrite(n, g, c, leaky=False))


# Base slopes of prelu_as_leaky_relu: XNNPACK (ai-edge-litert 2.3.0) left an int8 LEAKY_RELU
# with slope 0.004 or 0 outside the delegate and took 0.01 to 0.9.
LEAKY_SLOPES = (0.05, 0.95)


def prelu_as_leaky_relu(model: onnx.ModelProto) -> onnx.ModelProto:
    """PRelu(x, a) -> LeakyRelu(x, a) for one shared slope, else, with s the median slope
    (clipped to LEAKY_SLOPES):
    p * LeakyRelu(x, s) + q * x, p = (1 - a) / (1 - s), q = (a - s) / (1 - s) per channel
    (x > 0: p + q = 1; x < 0: p * s + q = a). Every op of it has an int8 kernel in XNNPACK;
    int8 PRELU and RELU have none, so either way each PReLU cut the delegated graph."""
    return rewrite_nodes(model, lambda n, g, c: _prelu_rewrite(n, g, c, leaky=True))


def _prelu_rewrite(node: onnx.NodeProto, graph: onnx.GraphProto,
                   constants: dict[str, np.ndarray], leaky: bool,
                   ) -> list[onnx.NodeProto] | None:
    if node.op_type != "PRelu" or node.input[1] not in constants:
        return None  # a slope computed at run time stays a PRelu
    x, slope, out = node.input[0], constants[node.input[1]], node.output[0]
    shared = float(slope.flat[0])
    if np.all(slope == shared) and (not leaky or LEAKY_SLOPES[0] <= shared <= 1.0):
        # one slope for every channel (for int8 one that XNNPACK's LEAKY_RELU takes)
        return [helper.make_node("LeakyRelu", [x], [out], alpha=shared, name=node.name)]
    p = (node.name or out).replace("/", "_") + ("_as_leaky" if leaky else "_as_relu")
    if not leaky:
        return [
            helper.make_node("Relu", [x], [f"{p}_positive"]),
            helper.make_node("Sub", [x, f"{p}_positive"], [f"{p}_negative"]),
            helper.make_node("Mul", [f"{p}_negative", node.input[1]], [f"{p}_leak"]),
            helper.make_node("Add", [f"{p}_positive", f"{p}_leak"], [out]),
        ]
    # any base slope s < 1 is exact: the median, kept where XNNPACK's int8 LEAKY_RELU runs
    base = float(np.clip(np.median(slope), *LEAKY_SLOPES))
    for name, factor in (("p", (1.0 - slope) / (1.0 - base)),
                         ("q", (slope - base) / (1.0 - base))):
        graph.initializer.append(numpy_helper.from_array(factor.astype(slope.dtype),
                                                         f"{p}_{name}"))
    return [
        helper.make_node("LeakyRelu", [x], [f"{p}_base"], alpha=base),
        helper.make_node("Mul", [f"{p}_base", f"{p}_p"], [f"{p}_scaled"]),
        helper.make_node("Mul", [x, f"{p}_q"], [f"{p}_linear"]),
        helper.make_node("Add", [f"{p}_scaled", f"{p}_linear"], [out]),
    ]


def reflect_pad_as_slices(model: onnx.ModelProto) -> onnx.ModelProto:
    """Pad(mode=reflect) over H and W -> Concat of mirrored one-pixel Slices and the input."""
    return rewrite_nodes(model, _reflect_pad_as_slices)


def _reflect_pad_as_slices(node: onnx.NodeProto, graph: onnx.GraphProto,
                           constants: dict[str, np.ndarray]) -> list[onnx.NodeProto] | None:
    pads = _spatial_reflect_pads(node, constants)
    if pads is None:
        return None
    nodes: list[onnx.NodeProto] = []
    prefix = (node.name or node.output[0]).replace("/", "_") + "_reflect"
    current = node.input[0]
    for axis, (begin, end) in pads.items():
        pieces = [_edge_slice(graph, nodes, current, axis, index, f"{prefix}_{axis}_b{index}")
                  for index in range(begin, 0, -1)]  # x[begin], ..., x[1]
        pieces.append(current)
        pieces += [_edge_slice(graph, nodes, current, axis, -1 - index,
                               f"{prefix}_{axis}_e{index}")
                   for index in range(1, end + 1)]  # x[-2], ..., x[-1 - end]
        current = f"{prefix}_{axis}"
        concat_in_groups(nodes, pieces, axis, current)
    nodes.append(helper.make_node("Identity", [current], [node.output[0]]))
    return nodes


def _spatial_reflect_pads(node: onnx.NodeProto, constants: dict[str, np.ndarray],
                          ) -> dict[int, tuple[int, int]] | None:
    """{axis: (begin, end)} of a constant reflect Pad over axes 2+ only, else None."""
    mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
    if (node.op_type != "Pad" or mode != b"reflect" or len(node.input) < 2
            or node.input[1] not in constants or (len(node.input) > 3 and node.input[3])):
        return None
    pads = constants[node.input[1]].tolist()
    rank = len(pads) // 2
    if any(p < 0 for p in pads) or any(pads[a] or pads[a + rank] for a in range(min(2, rank))):
        return None
    return {a: (pads[a], pads[a + rank]) for a in range(2, rank) if pads[a] or pads[a + rank]}


def _edge_slice(graph: onnx.GraphProto, nodes: list[onnx.NodeProto], source: str, axis: int,
                index: int, name: str) -> str:
    """source[..., index:index + 1, ...] along `axis`; a negative index counts from the end
    (never -1 here: reflection skips the edge pixel itself)."""
    bounds = {"starts": index, "ends": index + 1, "axes": axis}
    for key, value in bounds.items():
        graph.initializer.append(numpy_helper.from_array(np.array([value], np.int64),
                                                         f"{name}_{key}"))
    nodes.append(helper.make_node("Slice", [source] + [f"{name}_{k}" for k in bounds], [name]))
    return name


def pixel_shuffle_as_depth_to_space(model: onnx.ModelProto) -> onnx.ModelProto:
    """DepthToSpace(CRD) fed by a Conv alone (torch's PixelShuffle) -> the Conv's output
    channels reordered to DCR, then DepthToSpace(DCR). onnx2tf writes CRD as RESHAPE,
    TRANSPOSE, RESHAPE (a 6-D layout shuffle) and DCR as one DEPTH_TO_SPACE. Exact."""
    model = constants_to_initializers(model)
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "DepthToSpace" or attributes.get("mode", b"DCR") != b"CRD":
            continue
        conv = producers.get(node.input[0])
        if (conv is None or conv.op_type != "Conv" or consumers.get(node.input[0]) != 1
                or node.input[0] in outputs
                or any(a.name == "group" and a.i != 1 for a in conv.attribute)
                or not all(name in initializers for name in conv.input[1:])
                or any(consumers.get(name, 0) != 1 for name in conv.input[1:])):
            continue
        block = int(attributes["blocksize"])
        weight = numpy_helper.to_array(initializers[conv.input[1]])
        channels = weight.shape[0] // (block * block)
        # DCR channel (i * block + j) * C + c reads CRD channel c * block * block + i * block + j
        order = np.arange(weight.shape[0]).reshape(channels, block * block).T.reshape(-1)
        for name in conv.input[1:]:
            array = numpy_helper.to_array(initializers[name])
            initializers[name].CopyFrom(numpy_helper.from_array(array[order], name))
        for attribute in node.attribute:
            if attribute.name == "mode":
                attribute.s = b"DCR"
    return model


def nearest_upsample_as_depth_to_space(model: onnx.ModelProto) -> onnx.ModelProto:
    """Resize(nearest, integer factor k on H and W, torch's asymmetric/floor) -> Concat of
    k*k copies along C, then DepthToSpace(k, DCR): every output block repeats its pixel, as
    nearest upsampling does. XNNPACK has no RESIZE_NEAREST_NEIGHBOR; it has both of these."""
    return rewrite_nodes(model, _nearest_upsample_as_depth_to_space)


def _nearest_upsample_as_depth_to_space(node: onnx.NodeProto, graph: onnx.GraphProto,
                                        constants: dict[str, np.ndarray],
                                        ) -> list[onnx.NodeProto] | None:
    factor = _nearest_factor(node, constants)
    if factor is None:
        return None
    nodes: list[onnx.NodeProto] = []
    tiled = (node.name or node.output[0]).replace("/", "_") + "_tiled"
    concat_in_groups(nodes, [node.input[0]] * factor * factor, 1, tiled)
    nodes.append(helper.make_node("DepthToSpace", [tiled], [node.output[0]], blocksize=factor,
                                  mode="DCR"))
    return nodes


def _nearest_factor(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> int | None:
    """k of a Resize that repeats each pixel k x k times (NCHW, constant scales), else None."""
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if (node.op_type != "Resize" or attributes.get("mode", b"nearest") != b"nearest"
            or attributes.get("coordinate_transformation_mode") != b"asymmetric"
            or attributes.get("nearest_mode", b"round_prefer_floor") != b"floor"
            or len(node.input) < 3 or node.input[2] not in constants):
        return None
    scales = constants[node.input[2]]
    if scales.shape != (4,) or scales[0] != 1 or scales[1] != 1 or scales[2] != scales[3]:
        return None
    factor = float(scales[2])
    return int(factor) if factor.is_integer() and factor > 1 else None


def fold_scalar_multiplications(model: onnx.ModelProto) -> onnx.ModelProto:
    """Mul(x, a) then Mul(., b) or Div(., b), a and b scalar constants and the product read
    by nothing else -> Mul(x, a * b) (a / b). torch.onnx writes an unbiased `var` as the mean
    of squares x N x 1/(N - 1); in int8 the mean took the x N product's scale, 256 times too
    coarse at 16x16, and rounded to 0 in every channel (AdaIN's file: style std 0, its output
    the style mean alone). One MUL by N/(N - 1) keeps the mean on its own scale."""
    graph = constants_to_initializers(model).graph
    scalars = {i.name: numpy_helper.to_array(i) for i in graph.initializer
               if numpy_helper.to_array(i).size == 1}
    producers = {out: node for node in graph.node for out in node.output}
    readers = consumers_of(graph)
    # the consumer's output -> (x, a) of the Mul it absorbs; names, not nodes: every
    # rewrite copies the node list
    folded: dict[str, tuple[str, float]] = {}
    absorbed: set[str] = set()
    for node in graph.node:
        first = producers.get(node.input[0]) if node.op_type in ("Mul", "Div") else None
        if (first is not None and first.op_type == "Mul" and node.input[1] in scalars
                and first.input[1] in scalars and len(readers[first.output[0]]) == 1
                and first.output[0] not in folded):
            folded[node.output[0]] = first.input[0], float(scalars[first.input[1]].flat[0])
            absorbed.add(first.output[0])

    def fold(node: onnx.NodeProto, graph: onnx.GraphProto,
             _constants: dict[str, np.ndarray]) -> list[onnx.NodeProto] | None:
        output = node.output[0] if node.output else ""
        if output in absorbed:
            return []
        if output not in folded:
            return None
        (x, a), b = folded[output], float(scalars[node.input[1]].flat[0])
        factor = f"{output.replace('/', '_')}_folded_factor"
        graph.initializer.append(numpy_helper.from_array(
            np.array(a * b if node.op_type == "Mul" else a / b, np.float32), factor))
        return [helper.make_node("Mul", [x, factor], [output], name=node.name)]

    return rewrite_nodes(model, fold)


# ONNX ops whose TFLite op takes a fused activation (CONV_2D, ADD, ...): a Relu right after
# one whose output it alone reads becomes part of it, no RELU op of its own.
FUSES_ACTIVATION = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul",
                              "Div", "BatchNormalization", "AveragePool", "MaxPool"})


def standalone_relu_as_max_pool(model: onnx.ModelProto) -> onnx.ModelProto:
    """Relu(x) of a 4-D x that no op before it can absorb (a Concat's output, a skip
    tensor read twice) -> Relu(MaxPool(x, 1x1)). XNNPACK has no int8 RELU: each such RELU
    ran in LiteRT's own kernel and cut the delegated graph (pix2pix's decoder: 7); a 1x1
    MAX_POOL_2D with the RELU fused into it is a clamp XNNPACK runs in int8. Exact."""
    shapes = _static_shapes(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    readers = consumers_of(model.graph)

    def pooled(node: onnx.NodeProto, _graph: onnx.GraphProto,
               _constants: dict[str, np.ndarray]) -> list[onnx.NodeProto] | None:
        source = producers.get(node.input[0]) if node.op_type == "Relu" else None
        absorbed = (source is not None and source.op_type in FUSES_ACTIVATION
                    and len(readers.get(node.input[0], [])) == 1)
        if node.op_type != "Relu" or absorbed or len(shapes.get(node.input[0], ())) != 4:
            return None
        name = (node.name or node.output[0]).replace("/", "_") + "_pooled"
        return [helper.make_node("MaxPool", [node.input[0]], [name], kernel_shape=[1, 1]),
                helper.make_node("Relu", [name], list(node.output), name=node.name)]

    return rewrite_nodes(model, pooled)


REWRITE_PASSES: dict[str, RewritePass] = {
    "constants_to_initializers": constants_to_initializers,
    "fold_scalar_multiplications": fold_scalar_multiplications,
    "decompose_group_norm": decompose_group_norm,  # before decompose_instance_norm
    "decompose_layer_norm": decompose_layer_norm,
    "decompose_instance_norm": decompose_instance_norm,
    "div_by_sqrt_as_rsqrt": div_by_sqrt_as_rsqrt,  # before sqrt_as_rsqrt
    "sqrt_as_rsqrt": sqrt_as_rsqrt,
    "prelu_as_relu": prelu_as_relu,
    "prelu_as_leaky_relu": prelu_as_leaky_relu,
    "reflect_pad_as_slices": reflect_pad_as_slices,
    "nearest_upsample_as_depth_to_space": nearest_upsample_as_depth_to_space,
    "pixel_shuffle_as_depth_to_space": pixel_shuffle_as_depth_to_space,
    "conv_transpose_as_depth_to_space": conv_transpose_as_depth_to_space,
    "standalone_relu_as_max_pool": standalone_relu_as_max_pool,  # after the conv rewrites
}


def apply_passes(model: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    return apply_passes_reporting(model, names)[0]


def apply_passes_reporting(model: onnx.ModelProto, names: tuple[str, ...],
                           ) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    """(model, the passes that changed it): a pass that found nothing to rewrite is left out
    of the list, so metadata.json names only what was done."""
    applied = []
    for name in names:
        rewrite = REWRITE_PASSES.get(name)
        if rewrite is None:
            raise UsageError(f"unknown ONNX rewrite {name!r}",
                             hint=f"known rewrites: {', '.join(REWRITE_PASSES)}")
        before = model.SerializeToString(deterministic=True)
        model = rewrite(model)
        if model.SerializeToString(deterministic=True) != before:
            applied.append(name)
    onnx.checker.check_model(model)
    return model, tuple(applied)
