"""Stage 1: find the user's generator, build it, load weights, settle its input specs."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.errors import UsageError

DEFAULT_RANGE = ValueRange(0.0, 1.0)
SERIALIZED_SUFFIXES = (".pt", ".pth", ".pt2", ".ts", ".jit")


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    source: str  # what the user named, for metadata
    kind: str  # "factory", "torchscript", "exported_program"
    inputs: tuple[InputSpec, ...]
    output_names: tuple[str, ...]
    output_range: ValueRange | None
    weights: str | None


def load_model(
    ref: str,
    *,
    weights: Path | None = None,
    input_shapes: Sequence[tuple[int, ...]] = (),
    input_ranges: Sequence[ValueRange] = (),
    input_names: Sequence[str] = (),
    output_range: ValueRange | None = None,
    module: nn.Module | None = None,
) -> LoadedModel:
    """Build the model named by ref, or take `module` as given (ref then only labels it)."""
    if module is None:
        module, kind, declared_inputs, declared_output_range = _build(ref)
    else:
        module, kind, declared_inputs, declared_output_range = _given(module)
    if weights is not None:
        _load_weights(module, weights)
    module.eval()
    inputs = resolve_inputs(declared_inputs, input_shapes, input_ranges, input_names, ref)
    outputs = _trial_forward(module, inputs, ref)
    names = ("output",) if len(outputs) == 1 else tuple(f"output{i}" for i in range(len(outputs)))
    return LoadedModel(
        module=module,
        source=ref,
        kind=kind,
        inputs=inputs,
        output_names=names,
        output_range=output_range or declared_output_range,
        weights=str(weights) if weights is not None else None,
    )


def _build(ref: str) -> tuple[nn.Module, str, tuple[InputSpec, ...], ValueRange | None]:
    path = Path(ref)
    if path.suffix.lower() in SERIALIZED_SUFFIXES and ":" not in path.name:
        return _load_serialized(path)
    module_part, sep, factory_name = ref.rpartition(":")
    if not sep or not module_part or not factory_name:
        raise UsageError(
            f"cannot read model reference {ref!r}",
            hint="write it as package.module:factory, path/to/file.py:factory, "
            "or give a TorchScript (.pt) / ExportedProgram (.pt2) file",
        )
    py_module = _import(module_part)
    factory = getattr(py_module, factory_name, None)
    if factory is None or not callable(factory):
        public = sorted(n for n in dir(py_module) if not n.startswith("_") and
                        inspect.isfunction(getattr(py_module, n)))
        raise UsageError(
            f"{module_part} has no factory {factory_name!r}",
            hint=f"functions there: {', '.join(public[:12]) or 'none'}",
        )
    try:
        model = factory()
    except Exception as error:  # the user's code: report, do not crash
        raise UsageError(
            f"{ref}() failed: {type(error).__name__}: {error}",
            hint="the factory must build the model without arguments; run it in Python to see why",
        ) from error
    if not isinstance(model, nn.Module):
        raise UsageError(
            f"{ref}() returned {type(model).__name__}, not a torch.nn.Module",
            hint="return the generator itself from the factory",
        )
    declared = tuple(getattr(py_module, "INPUTS", ()) or ())
    return model, "factory", declared, getattr(py_module, "OUTPUT_RANGE", None)


def _given(module: Any) -> tuple[nn.Module, str, tuple[InputSpec, ...], ValueRange | None]:
    if not isinstance(module, nn.Module):
        raise UsageError(
            f"mobilize.export() got {type(module).__name__}, not a torch.nn.Module",
            hint="pass the generator module itself, or a reference such as 'my_gen.py:build'",
        )
    declared = tuple(getattr(module, "INPUTS", ()) or ())
    return module, "module", declared, getattr(module, "OUTPUT_RANGE", None)


def module_label(module: nn.Module) -> str:
    """How metadata.json names a module handed over in memory: its class, importable where
    the class lives in an importable module."""
    cls = type(module)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import(module_part: str) -> Any:
    if module_part.endswith(".py"):
        file = Path(module_part)
        if not file.is_file():
            raise UsageError(f"no such file: {file}", hint="check the path to the model's .py file")
        name = f"_mobilize_user_{abs(hash(file.resolve()))}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {file}", hint="give a Python source file")
        py_module = importlib.util.module_from_spec(spec)
        sys.modules[name] = py_module
        try:
            spec.loader.exec_module(py_module)
        except Exception as error:
            sys.modules.pop(name, None)
            raise UsageError(
                f"importing {file} failed: {type(error).__name__}: {error}",
                hint="run the file with python to see the error",
            ) from error
        return py_module
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as error:
        raise UsageError(
            f"cannot import {module_part!r}: {error}",
            hint="check the module path and that its package is installed or in the current "
            "folder; a file path needs .py, e.g. models/espcn.py:build",
        ) from error


def _load_serialized(path: Path) -> tuple[nn.Module, str, tuple[InputSpec, ...], None]:
    if not path.is_file():
        raise UsageError(f"no such model file: {path}", hint="check the path")
    if path.suffix.lower() == ".pt2":
        try:
            program = torch.export.load(str(path))
        except Exception as error:
            raise UsageError(f"cannot load ExportedProgram {path}: {error}",
                             hint="save it with torch.export.save") from error
        return _ProgramModule(program.module()), "exported_program", (), None
    try:
        return torch.jit.load(str(path), map_location="cpu"), "torchscript", (), None
    except Exception as error:
        raise UsageError(
            f"cannot load {path} as TorchScript: {error}",
            hint="a state_dict is not a model: give the factory (module:factory) and pass "
            "this file with --weights",
        ) from error


class _ProgramModule(nn.Module):
    """An ExportedProgram's module refuses train()/eval(), which torch.onnx calls to put a
    model in eval mode; the program is already an inference graph, so only the flag moves."""

    def __init__(self, program_module: nn.Module) -> None:
        super().__init__()
        self.program = program_module

    def train(self, mode: bool = True) -> _ProgramModule:
        self.training = mode
        return self

    def forward(self, *args: torch.Tensor) -> Any:
        return self.program(*args)


def _load_weights(module: nn.Module, weights: Path) -> None:
    if not weights.is_file():
        raise UsageError(f"no such weights file: {weights}", hint="check the --weights path")
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as error:
        raise UsageError(f"cannot read weights {weights}: {error}",
                         hint="--weights takes a state_dict saved with torch.save") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UsageError(f"{weights} holds a {type(state).__name__}, not a state_dict",
                         hint="save model.state_dict() with torch.save")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} ({', '.join(missing[:4])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} ({', '.join(unexpected[:4])})")
        if wrong:
            parts.append(f"wrong shape {len(wrong)} ({'; '.join(wrong[:3])})")
        raise UsageError(
            f"weights {weights} do not fit the model: {', '.join(parts)}",
            hint="check that the factory builds the same architecture (width, blocks) the "
            "weights were trained with",
        )
    module.load_state_dict(state)


def resolve_inputs(
    declared: Sequence[InputSpec],
    shapes: Sequence[tuple[int, ...]],
    ranges: Sequence[ValueRange],
    names: Sequence[str],
    ref: str,
) -> tuple[InputSpec, ...]:
    """Merge what the model module declares with what the command line overrides."""
    count = max(len(shapes), len(declared)) or len(names)
    if count == 0:
        raise UsageError(
            f"{ref} declares no INPUTS, so the input shape is unknown",
            hint="give it with --input 1x3x256x256 (once per input)",
        )
    if shapes and declared and len(shapes) != len(declared):
        raise UsageError(
            f"{len(shapes)} --input given but the model declares {len(declared)} inputs "
            f"({', '.join(s.name for s in declared)})",
            hint="give one --input per model input, in order",
        )
    if len(ranges) not in (0, 1, count):
        raise UsageError(f"{len(ranges)} --range given for {count} inputs",
                         hint="give one --range for all inputs or one per input")
    if names and len(names) != count:
        raise UsageError(f"{len(names)} --input-name given for {count} inputs",
                         hint="one name per input")
    specs = []
    for i in range(count):
        base = declared[i] if i < len(declared) else None
        shape = shapes[i] if shapes else base.shape  # type: ignore[union-attr]
        if ranges:
            value_range = ranges[i] if len(ranges) == count else ranges[0]
        else:
            value_range = base.value_range if base else DEFAULT_RANGE
        name = names[i] if names else (base.name if base else
                                       ("input" if count == 1 else f"input{i}"))
        specs.append(InputSpec(_safe_name(name), tuple(shape), value_range))
    if len({s.name for s in specs}) != len(specs):
        raise UsageError("input names must differ", hint="use --input-name once per input")
    return tuple(specs)


def _safe_name(name: str) -> str:
    # TensorFlow signature keys must be identifiers; ONNX/TFLite keep the same name.
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"input_{cleaned}"


def example_inputs(inputs: Sequence[InputSpec]) -> tuple[torch.Tensor, ...]:
    """Mid-range inputs for tracing: a constant in the declared range."""
    return tuple(
        torch.full(spec.shape, (spec.value_range.low + spec.value_range.high) / 2.0)
        for spec in inputs
    )


def _trial_forward(module: nn.Module, inputs: Sequence[InputSpec],
                   ref: str) -> tuple[torch.Tensor, ...]:
    try:
        with torch.no_grad():
            result = module(*example_inputs(inputs))
    except Exception as error:
        shapes = ", ".join(f"{s.name} {'x'.join(map(str, s.shape))}" for s in inputs)
        raise UsageError(
            f"{ref} does not accept inputs {shapes}: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}",
            hint="check --input (NCHW, e.g. 1x3x256x256: 3 channels, a size the network's "
            "down/up-sampling divides) and the number of inputs",
        ) from error
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    if not outputs or not all(isinstance(o, torch.Tensor) for o in outputs):
        raise UsageError(f"{ref} must return a tensor or a tuple of tensors",
                         hint="return the generated image tensor(s) from forward()")
    return tuple(outputs)
