"""Input and output tensors of a .tflite in PyTorch's forward() order.

A SavedModel signature is a map keyed by name, and `TFLiteConverter.from_saved_model` lists
the model's inputs and outputs in that map's (alphabetical) order: a stylizer's
`forward(photo, art)` came out with input 0 = `art`. An app that feeds tensors by position
(`Interpreter.run`, `runForMultipleInputsOutputs`, `get_input_details()[0]`) then swaps the
images without any error. The signature (inputs by name) is right either way, so the fix
permutes the subgraph's input and output lists to the forward order and leaves everything
else, signature included, byte for byte as the converter wrote it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorOrder:
    """Signature names in the order PyTorch's forward() takes and returns them."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def in_forward_order(content: bytes, order: TensorOrder) -> bytes:
    """`content` with subgraph 0's inputs and outputs listed in `order` (names the file's
    signature does not have, or a list that is not a permutation, leave that list as is)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runner = interpreter.get_signature_runner()
    inputs = _indices(runner.get_input_details(), order.inputs)
    outputs = _indices(runner.get_output_details(), order.outputs)
    return _permuted(content, inputs, outputs)


def _indices(details: dict[str, dict], names: Sequence[str]) -> list[int] | None:
    if set(names) != set(details):
        return None
    return [int(details[name]["index"]) for name in names]


def _permuted(content: bytes, inputs: list[int] | None, outputs: list[int] | None) -> bytes:
    from tensorflow.lite.python import schema_py_generated as schema

    buffer = bytearray(content)
    subgraph = schema.Model.GetRootAs(buffer, 0).Subgraphs(0)
    before = _operator_tensors(subgraph)
    # Views into `buffer` (flatbuffers' numpy accessors): assigning writes the file in place.
    for wanted, view in ((inputs, subgraph.InputsAsNumpy()), (outputs, subgraph.OutputsAsNumpy())):
        if wanted is not None and sorted(wanted) == sorted(view.tolist()):
            view[:] = np.asarray(wanted, dtype=view.dtype)
    # A builder may share one vector between tables; then the in-place write changed an op.
    if _operator_tensors(schema.Model.GetRootAs(buffer, 0).Subgraphs(0)) != before:
        raise AssertionError("reordering the model inputs changed an operator's tensors")
    return bytes(buffer)


def _operator_tensors(subgraph: object) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    ops = (subgraph.Operators(i) for i in range(subgraph.OperatorsLength()))  # type: ignore[attr-defined]
    return [(tuple(op.InputsAsNumpy().tolist()) if op.InputsLength() else (),
             tuple(op.OutputsAsNumpy().tolist()) if op.OutputsLength() else ()) for op in ops]
