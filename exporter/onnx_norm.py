"""ONNX rewrites of per-image normalization into plain ops, for int8 and int16x8.

TFLite has no INSTANCE_NORM op; onnx2tf writes InstanceNormalization with
SQUARED_DIFFERENCE, which has no int16 kernel, and quantizes it badly in int8. Written as
ReduceMean / Sub / Mul / ReduceMean / Add / Sqrt / Div / Mul / Add it converts for every
target and the converter fuses 1/sqrt into RSQRT. `sqrt_as_rsqrt` does the same for a Sqrt
used as a factor (AdaIN's style std): int16x8 has no SQRT kernel but has RSQRT. All exact in
float (tested with onnxruntime). The research levers built on these (channel equalization,
two-stage norms) live in benchmarks/research/, outside the shipped package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mobilize.exporter.onnx_graph import constants_to_initializers, opset_of


def decompose_instance_norm(model: onnx.ModelProto) -> onnx.ModelProto:
    """InstanceNormalization -> (x - mean) / sqrt(mean((x - mean)^2) + eps) * scale + bias
    over H, W, with Mul for the square (no SquaredDifference/Pow, which int16x8 cannot run)."""
    model = constants_to_initializers(model)
    graph = model.graph
    opset = opset_of(model)
    initializers = {init.name: init for init in graph.initializer}
    shapes = _static_shapes(model)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        # a rank-3 one (GroupNorm's, when decompose_group_norm did not take it) reduces over
        # its last axis only: not this rewrite's H, W
        if (node.op_type != "InstanceNormalization"
                or len(shapes.get(node.input[0], (0,) * 4)) != 4):
            nodes.append(node)
            continue
        x, scale_name, bias_name = node.input
        p = (node.name or node.output[0]).replace("/", "_") + "_int8"
        scale = numpy_helper.to_array(initializers[scale_name]).reshape(-1, 1, 1)
        bias = numpy_helper.to_array(initializers[bias_name]).reshape(-1, 1, 1)
        graph.initializer.extend([
            numpy_helper.from_array(np.array(epsilon_of(node), np.float32), f"{p}_eps"),
            numpy_helper.from_array(scale.astype(np.float32), f"{p}_scale"),
            numpy_helper.from_array(bias.astype(np.float32), f"{p}_bias")])
        mean = mean_over_hw(graph, opset, f"{p}_axes")
        nodes += [
            mean(x, f"{p}_mean"),
            helper.make_node("Sub", [x, f"{p}_mean"], [f"{p}_centered"]),
            *normalize_centered(mean, p, f"{p}_centered", f"{p}_eps"),
            helper.make_node("Mul", [f"{p}_normed", f"{p}_scale"], [f"{p}_scaled"]),
            helper.make_node("Add", [f"{p}_scaled", f"{p}_bias"], [node.output[0]]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused_initializers(model)
    return model


def mean_over_hw(graph: onnx.GraphProto, opset: int, axes_name: str):
    """A maker of ReduceMean nodes over axes 2, 3 in the form the opset asks for."""
    return mean_over(graph, opset, axes_name, (2, 3))


def mean_over(graph: onnx.GraphProto, opset: int, axes_name: str, axes: Sequence[int]):
    """A maker of ReduceMean nodes (keepdims) over `axes` in the form the opset asks for."""
    if opset >= 18:  # ReduceMean takes its axes as an input from opset 18 on
        graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), axes_name))

    def reduce_mean(inp: str, out: str) -> onnx.NodeProto:
        if opset >= 18:
            return helper.make_node("ReduceMean", [inp, axes_name], [out], keepdims=1)
        return helper.make_node("ReduceMean", [inp], [out], axes=list(axes), keepdims=1)

    return reduce_mean


def normalize_centered(mean, p: str, centered: str, eps_term: str) -> list[onnx.NodeProto]:
    """centered / sqrt(mean(centered^2) + eps) -> `{p}_normed`."""
    return [
        helper.make_node("Mul", [centered, centered], [f"{p}_sq"]),
        mean(f"{p}_sq", f"{p}_var"),
        helper.make_node("Add", [f"{p}_var", eps_term], [f"{p}_var_eps"]),
        helper.make_node("Sqrt", [f"{p}_var_eps"], [f"{p}_std"]),
        helper.make_node("Div", [centered, f"{p}_std"], [f"{p}_normed"]),
    ]


def sqrt_as_rsqrt(model: onnx.ModelProto) -> onnx.ModelProto:
    """std = sqrt(var + eps) used as a factor (AdaIN's style std) -> (var + eps) * (1 / sqrt(
    var + eps)). The TFLite converter turns 1 / sqrt into RSQRT, which int16x8 can quantize;
    a bare SQRT it cannot ("Quantization to 16x8-bit not yet supported for op: 'SQRT'").
    Only for a Sqrt fed by Add with a positive constant, so the input is never zero. A Sqrt
    read only as a denominator is left alone: the converter already makes that RSQRT."""
    model = constants_to_initializers(model)  # torch exports eps as a Constant node
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers = consumers_of(graph)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        readers = consumers.get(node.output[0], []) if node.op_type == "Sqrt" else []
        only_denominator = all(r.op_type == "Div" and list(r.input).index(node.output[0]) == 1
                               for r in readers)
        if node.op_type != "Sqrt" or only_denominator or not _positive_offset(
                producers.get(node.input[0]), constants):
            nodes.append(node)
            continue
        p = (node.name or node.output[0]).replace("/", "_") + "_via_rsqrt"
        graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), f"{p}_one"))
        nodes += [
            helper.make_node("Sqrt", [node.input[0]], [f"{p}_sqrt"]),
            helper.make_node("Div", [f"{p}_one", f"{p}_sqrt"], [f"{p}_rsqrt"]),
            helper.make_node("Mul", [node.input[0], f"{p}_rsqrt"], [node.output[0]]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def epsilon_of(node: onnx.NodeProto) -> float:
    return next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)


def consumers_of(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _positive_offset(node: onnx.NodeProto | None, constants: Mapping[str, np.ndarray]) -> bool:
    if node is None or node.op_type != "Add":
        return False
    return any(name in constants and bool(np.all(constants[name] > 0)) for name in node.input)


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    used |= {out.name for out in model.graph.output}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


# ---------------------------------------------------------------- GroupNorm and LayerNorm
#
# torch exports GroupNorm(G, C) as Reshape(x, [N, G, -1]) -> InstanceNormalization (per-group
# ones and zeros) -> Reshape(back to x's shape) -> Mul(weight) -> Add(bias). onnx2tf cannot
# follow the rank-3 detour out of NCHW (AnimeGANv2's GroupNorm(1, C) failed at its Reshape),
# so the three nodes are written on the 4-D tensor itself: per-channel means over H, W, then
# a 1x1 Conv that averages them within each group (groups are equal in size, so the mean of
# the channel means is the group mean: exact). LayerNormalization (torch's LayerNorm) becomes
# the same plain ops over its trailing axes.


def decompose_group_norm(model: onnx.ModelProto) -> onnx.ModelProto:
    """Reshape -> InstanceNormalization -> Reshape (torch's GroupNorm) on a 4-D NCHW tensor
    -> ReduceMean / Conv (group average) / Sub / Mul / Add / Sqrt / Div; the weight and bias
    Mul/Add that follow are kept as they are."""
    model = constants_to_initializers(model)
    graph = model.graph
    shapes = _static_shapes(model)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers = consumers_of(graph)
    replaced: dict[str, list[onnx.NodeProto]] = {}  # first node of a pattern -> its nodes
    dropped: set[str] = set()
    for node in graph.node:
        found = _group_norm_pattern(node, producers, consumers, constants, shapes)
        if found is None:
            continue
        before, after, channels = found
        replaced[before.output[0]] = _group_normalized(
            graph, opset_of(model), node, before.input[0], after.output[0], channels,
            constants)
        dropped |= {node.output[0], after.output[0]}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.output[0] in replaced:
            nodes += replaced[node.output[0]]
        elif node.output[0] not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused_initializers(model)
    return model


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Tensor name -> static shape, where shape inference knows every dimension."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    shapes = {}
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def _group_norm_pattern(node: onnx.NodeProto, producers: Mapping[str, onnx.NodeProto],
                        consumers: Mapping[str, list[onnx.NodeProto]],
                        constants: Mapping[str, np.ndarray],
                        shapes: Mapping[str, tuple[int, ...]],
                        ) -> tuple[onnx.NodeProto, onnx.NodeProto, int] | None:
    """(Reshape before, Reshape after, channels) around a group InstanceNormalization."""
    if node.op_type != "InstanceNormalization":
        return None
    before = producers.get(node.input[0])
    readers = consumers.get(node.output[0], [])
    if before is None or before.op_type != "Reshape" or len(readers) != 1:
        return None
    after = readers[0]
    x_shape = shapes.get(before.input[0])
    grouped = shapes.get(node.input[0])
    if (after.op_type != "Reshape" or x_shape is None or len(x_shape) != 4
            or shapes.get(after.output[0]) != x_shape or grouped is None or len(grouped) != 3
            or x_shape[1] % grouped[1] or len(consumers.get(before.output[0], [])) != 1
            or node.input[1] not in constants or node.input[2] not in constants):
        return None
    return before, after, x_shape[1]


def _group_normalized(graph: onnx.GraphProto, opset: int, node: onnx.NodeProto, x: str,
                      out: str, channels: int, constants: Mapping[str, np.ndarray],
                      ) -> list[onnx.NodeProto]:
    groups = constants[node.input[1]].size
    per_group = channels // groups
    p = (node.name or node.output[0]).replace("/", "_") + "_group_norm"
    # A group's scale and bias, spread over its channels (torch's are ones and zeros).
    scale = np.repeat(constants[node.input[1]].astype(np.float32), per_group).reshape(-1, 1, 1)
    bias = np.repeat(constants[node.input[2]].astype(np.float32), per_group).reshape(-1, 1, 1)
    average = np.kron(np.eye(groups, dtype=np.float32),
                      np.full((per_group, per_group), 1.0 / per_group, np.float32))
    graph.initializer.extend([
        numpy_helper.from_array(average.reshape(channels, channels, 1, 1), f"{p}_average"),
        numpy_helper.from_array(np.array(epsilon_of(node), np.float32), f"{p}_eps"),
        numpy_helper.from_array(scale, f"{p}_scale"),
        numpy_helper.from_array(bias, f"{p}_bias")])
    mean_hw = mean_over_hw(graph, opset, f"{p}_axes")

    def group_mean(inp: str, result: str) -> list[onnx.NodeProto]:
        return [mean_hw(inp, f"{result}_per_channel"),
                helper.make_node("Conv", [f"{result}_per_channel", f"{p}_average"], [result])]

    nodes = [
        *group_mean(x, f"{p}_mean"),
        helper.make_node("Sub", [x, f"{p}_mean"], [f"{p}_centered"]),
        helper.make_node("Mul", [f"{p}_centered", f"{p}_centered"], [f"{p}_sq"]),
        *group_mean(f"{p}_sq", f"{p}_var"),
        helper.make_node("Add", [f"{p}_var", f"{p}_eps"], [f"{p}_var_eps"]),
        helper.make_node("Sqrt", [f"{p}_var_eps"], [f"{p}_std"]),
    ]
    return nodes + _affine(f"{p}_centered", f"{p}_std", scale, bias, p, out)


def _affine(centered: str, std: str, scale: np.ndarray, bias: np.ndarray, p: str,
            out: str) -> list[onnx.NodeProto]:
    """centered / std * scale + bias -> out, leaving out a Mul by ones or an Add of zeros."""
    steps = [("Div", std, True), ("Mul", f"{p}_scale", not np.all(scale == 1)),
             ("Add", f"{p}_bias", not np.all(bias == 0))]
    kept = [(op, operand) for op, operand, needed in steps if needed]
    nodes, current = [], centered
    for rank, (op, operand) in enumerate(kept):
        result = out if rank == len(kept) - 1 else f"{p}_{op.lower()}"
        nodes.append(helper.make_node(op, [current, operand], [result]))
        current = result
    return nodes


def decompose_layer_norm(model: onnx.ModelProto) -> onnx.ModelProto:
    """LayerNormalization(axis) -> the same mean / variance / Div over axes axis.., then the
    elementwise scale and bias (exact in float)."""
    model = constants_to_initializers(model)
    graph = model.graph
    shapes = _static_shapes(model)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        rank = len(shapes.get(node.input[0], ())) if node.op_type == "LayerNormalization" else 0
        if (not rank or len(node.output) > 1 or node.input[1] not in constants
                or (len(node.input) > 2 and node.input[2] and node.input[2] not in constants)):
            nodes.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1) % rank
        p = (node.name or node.output[0]).replace("/", "_") + "_layer_norm"
        scale = constants[node.input[1]].astype(np.float32)
        bias = (constants[node.input[2]].astype(np.float32)
                if len(node.input) > 2 and node.input[2] else np.zeros_like(scale))
        graph.initializer.extend([
            numpy_helper.from_array(np.array(epsilon_of(node), np.float32), f"{p}_eps"),
            numpy_helper.from_array(scale, f"{p}_scale"),
            numpy_helper.from_array(bias, f"{p}_bias")])
        mean = mean_over(graph, opset_of(model), f"{p}_axes", range(axis, rank))
        nodes += [
            mean(node.input[0], f"{p}_mean"),
            helper.make_node("Sub", [node.input[0], f"{p}_mean"], [f"{p}_centered"]),
            helper.make_node("Mul", [f"{p}_centered", f"{p}_centered"], [f"{p}_sq"]),
            mean(f"{p}_sq", f"{p}_var"),
            helper.make_node("Add", [f"{p}_var", f"{p}_eps"], [f"{p}_var_eps"]),
            helper.make_node("Sqrt", [f"{p}_var_eps"], [f"{p}_std"]),
            *_affine(f"{p}_centered", f"{p}_std", scale, bias, p, node.output[0]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused_initializers(model)
    return model


# ---------------------------------------------------------------- division by a std
#
# AdaIN's `(x - mean) / std.reshape(n, c, 1, 1)` keeps a DIV: the Reshape between the SQRT and
# the DIV stops the converter's 1/sqrt -> RSQRT fusion. In int8 the divisor of a channel that
# is flat in every sample (std = sqrt(eps)) rounds to the zero point, and LiteRT's DIV kernel
# refuses it at run time ("data[i] != zero_point"): the unseen AdaIN net had no int8 at all.
# As x * reshape(1 / sqrt(v)) the converter makes RSQRT(v), which has no such check.


def div_by_sqrt_as_rsqrt(model: onnx.ModelProto) -> onnx.ModelProto:
    """Div(x, Reshape*(Sqrt(v + eps))) -> Mul(x, Reshape*(1 / Sqrt(v + eps))), for a positive
    constant eps only (so 1 / sqrt is finite). Exact in float up to rounding."""
    model = constants_to_initializers(model)
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        chain = _reshapes_to_sqrt(node.input[1], producers) if node.op_type == "Div" else None
        if chain is None or not _positive_offset(producers.get(chain[0].input[0]), constants):
            nodes.append(node)
            continue
        sqrt, reshapes = chain
        p = (node.name or node.output[0]).replace("/", "_") + "_as_rsqrt"
        graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), f"{p}_one"))
        nodes.append(helper.make_node("Div", [f"{p}_one", sqrt.output[0]], [f"{p}_inverse"]))
        current = f"{p}_inverse"
        for rank, reshape in enumerate(reshapes):
            nodes.append(helper.make_node("Reshape", [current, *reshape.input[1:]],
                                          [f"{p}_inverse_{rank}"]))
            current = f"{p}_inverse_{rank}"
        nodes.append(helper.make_node("Mul", [node.input[0], current], [node.output[0]]))
    del graph.node[:]
    graph.node.extend(nodes)
    drop_dead_nodes(model)
    return model


def _reshapes_to_sqrt(name: str, producers: Mapping[str, onnx.NodeProto],
                      ) -> tuple[onnx.NodeProto, list[onnx.NodeProto]] | None:
    """(the Sqrt, the Reshapes from it to `name` in order) when only Reshapes lie between."""
    reshapes: list[onnx.NodeProto] = []
    node = producers.get(name)
    while node is not None and node.op_type == "Reshape":
        reshapes.insert(0, node)
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Sqrt":
        return None
    return node, reshapes


def drop_dead_nodes(model: onnx.ModelProto) -> None:
    """Remove nodes none of whose outputs is read (what a rewrite left behind)."""
    graph = model.graph
    needed = {out.name for out in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    drop_unused_initializers(model)
