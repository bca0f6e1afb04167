"""Small helpers on ONNX graphs that every rewrite builds on."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


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
