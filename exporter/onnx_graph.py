"""Small helpers on ONNX graphs that every rewrite builds on."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)


def constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    kept = []
    for node in graph.node:
        value = _constant_value(node)
        if value is None:
            kept.append(node)
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(value)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def _constant_value(node: onnx.NodeProto) -> onnx.TensorProto | None:
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
        return None
    for attribute in node.attribute:
        if attribute.name == "value":
            return attribute.t
        if attribute.name in ("value_float", "value_floats"):
            data = np.array(attribute.f if attribute.name == "value_float" else attribute.floats,
                            dtype=np.float32)
            return numpy_helper.from_array(data)
        if attribute.name in ("value_int", "value_ints"):
            data = np.array(attribute.i if attribute.name == "value_int" else attribute.ints,
                            dtype=np.int64)
            return numpy_helper.from_array(data)
    return None


MAX_CONCAT_INPUTS = 4  # XNNPACK concatenates up to 5 inputs; a wider one runs in LiteRT


def concat_in_groups(nodes: list[onnx.NodeProto], pieces: list[str], axis: int,
                     output: str) -> None:
    """Concat(pieces) as a tree of Concats with at most MAX_CONCAT_INPUTS inputs each (a 9x9
    conv's reflection pad makes 9 pieces), so that every one stays in the CPU delegate."""
    level = 0
    while len(pieces) > MAX_CONCAT_INPUTS:
        grouped = []
        for start in range(0, len(pieces), MAX_CONCAT_INPUTS):
            chunk = pieces[start:start + MAX_CONCAT_INPUTS]
            if len(chunk) == 1:
                grouped.append(chunk[0])
                continue
            name = f"{output}_group{level}_{start}"
            nodes.append(helper.make_node("Concat", chunk, [name], axis=axis))
            grouped.append(name)
        pieces, level = grouped, level + 1
    nodes.append(helper.make_node("Concat", pieces, [output], axis=axis))


# A node's replacement (None: keep the node). It reads constants by name and may append
# initializers to the graph for the nodes it makes.
NodeRewrite = Callable[[onnx.NodeProto, onnx.GraphProto, dict[str, np.ndarray]],
                       list[onnx.NodeProto] | None]


def rewrite_nodes(model: onnx.ModelProto, rewrite: NodeRewrite) -> onnx.ModelProto:
    """Every node through `rewrite`, after Constant nodes became initializers (so a rewrite
    sees torch's constant pads, scales and slopes)."""
    model = constants_to_initializers(model)
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    new_nodes: list[onnx.NodeProto] = []
    changed = False
    for node in graph.node:
        replacement = rewrite(node, graph, constants)
        new_nodes.extend([node] if replacement is None else replacement)
        changed = changed or replacement is not None
    if not changed:
        return model
    del graph.node[:]
    graph.node.extend(new_nodes)
    return drop_unused_initializers(model)


def drop_unused_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Initializers no node reads any more (a rewritten PReLU's slope, a Resize's scales)."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output} | {i.name for i in graph.input}
    for index in reversed(range(len(graph.initializer))):
        if graph.initializer[index].name not in used:
            del graph.initializer[index]
    return model
