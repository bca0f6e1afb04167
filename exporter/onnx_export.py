"""Stages 2 and 3: PyTorch -> ONNX (static shapes, named tensors), then clean-up
(constant folding and simplification with onnxsim, then the named rewrites)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from mobilize.errors import ConversionError
from mobilize.exporter.model_loader import LoadedModel, example_inputs
from mobilize.exporter.onnx_rewrites import apply_passes_reporting


@dataclass(frozen=True)
class OnnxArtifact:
    path: Path
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    op_types: tuple[str, ...]  # distinct op types, sorted
    rewrites: tuple[str, ...] = ()
    simplified: bool = False


def export_onnx(loaded: LoadedModel, path: Path, opset: int) -> OnnxArtifact:
    input_names = [spec.name for spec in loaded.inputs]
    try:
        with warnings.catch_warnings():
            # The TorchScript-based exporter warns that it is deprecated; it is the one that
            # needs no onnxscript and gives static, named graphs here.
            # Its notes on constant folding, instance_norm's training flag and the tracer's
            # shape checks inside torch's own layers are internals the user cannot act on;
            # real failures raise.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=UserWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                loaded.module,
                example_inputs(loaded.inputs),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=input_names,
                output_names=list(loaded.output_names),
                do_constant_folding=True,
            )
    except Exception as error:
        raise ConversionError(
            f"PyTorch -> ONNX export failed: {type(error).__name__}: {_first_line(error)}",
            hint="an op without an ONNX symbolic at this opset: try --opset 18, or rewrite that "
            "op with standard layers; run with --debug for the traceback",
        ) from error
    model = onnx.load(str(path))
    return _artifact(path, model, opset)


def clean_onnx(source: OnnxArtifact, path: Path, passes: tuple[str, ...]) -> OnnxArtifact:
    """onnxsim, then the passes: one graph (the pipeline makes one per target's pass list)."""
    model, simplified = simplify_onnx(source)
    return rewrite_onnx(model, path, passes, source.opset, simplified)


def simplify_onnx(source: OnnxArtifact) -> tuple[onnx.ModelProto, bool]:
    """(model, simplified): onnxsim's constant folding and simplification, or the plain graph
    when onnxsim fails."""
    from onnxsim import simplify

    model = onnx.load(str(source.path))
    try:
        candidate, ok = simplify(model)
        if ok:
            return candidate, True
    except Exception:  # noqa: BLE001 - onnxsim is an optimisation; keep the plain graph
        pass
    return model, False


def rewrite_onnx(model: onnx.ModelProto, path: Path, passes: tuple[str, ...], opset: int,
                 simplified: bool) -> OnnxArtifact:
    """A copy of `model` through `passes`, saved at `path`; `rewrites` lists only the passes
    that changed the graph."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy, applied = apply_passes_reporting(copy, passes)
    onnx.save(copy, str(path))
    artifact = _artifact(path, copy, opset)
    return OnnxArtifact(**{**artifact.__dict__, "rewrites": applied, "simplified": simplified})


def _artifact(path: Path, model: onnx.ModelProto, opset: int) -> OnnxArtifact:
    initializer_names = {init.name for init in model.graph.initializer}
    return OnnxArtifact(
        path=path,
        opset=opset,
        input_names=tuple(i.name for i in model.graph.input if i.name not in initializer_names),
        output_names=tuple(o.name for o in model.graph.output),
        op_types=tuple(sorted({n.op_type for n in model.graph.node})),
    )


def node_op_type(onnx_path: Path, node_name: str) -> str | None:
    model = onnx.load(str(onnx_path))
    return next((n.op_type for n in model.graph.node if n.name == node_name), None)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
