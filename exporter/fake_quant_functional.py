"""Fake quantization of the arithmetic a model writes in its own forward(), not in modules.

exporter/fake_quant.py rounds at module outputs, so a model whose per-image statistics are
computed by functions (naoto0804/pytorch-AdaIN's `calc_mean_std`: `feat.var(dim=2)`,
`.sqrt()`, `(x - mean) / std * style_std + style_mean`) was trained unrounded exactly where
the int8 file loses most: the student of an AdaIN stylizer reported 24.5 dB while its real
file had 3.9 (measured at 32x32). `FunctionalQuant` is a torch function mode that sees each
of those calls and rounds its output as the int8 file rounds that tensor:

- arithmetic (add, sub, mul, div, mean, pow, tanh, cat, a bilinear resize, ...) on values
  computed from the model's inputs: per-tensor int8, one ActivationQuant per call, in call
  order (generators take the same path for every image); tanh / sigmoid on TFLite's fixed
  scales. Reshapes, slices, pads, nearest resizes only move values: not rounded again.
- `var` as the int8 graph computes it: mean, x - mean, its square, their mean, times
  N / (N - correction) (torch.onnx's x N, / (N - correction), folded into one multiply by
  `fold_scalar_multiplications`), each rounded.
- `sqrt(v)` as exporter/onnx_norm.py rewrites it: RSQRT(v) rounded, then v * RSQRT(v)
  rounded (`sqrt_as_rsqrt`, the factor form); a division by it (or a reshape of it) is a
  multiplication by that RSQRT (`div_by_sqrt_as_rsqrt`), as in the file.

Calls inside modules are left to fake_quant.py's module hooks: torch.nn's own leaf modules,
the convolutions and the replaced norms are opaque here. A user module without children
that computes with functions is seen through.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree
from torch.utils.weak import WeakIdKeyDictionary

from mobilize.exporter.fake_quant_quantizers import (
    LOGISTIC_PARAMS,
    QUANT_NORMS,
    TANH_PARAMS,
    ActivationQuant,
)

ROUNDED = frozenset({
    "add", "sub", "rsub", "mul", "div", "true_divide", "mean", "sum", "rsqrt", "exp", "log",
    "pow", "square", "neg", "abs", "relu", "leaky_relu", "elu", "silu", "gelu", "hardswish",
    "hardtanh", "clamp", "clip", "cat", "concat", "matmul", "bmm", "mm", "addcmul", "lerp",
    "avg_pool2d", "adaptive_avg_pool2d", "prelu", "conv2d", "conv_transpose2d", "linear",
    "interpolate",
    "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__",
    "__rmul__", "__imul__", "__truediv__", "__rtruediv__", "__itruediv__", "__pow__",
    "__rpow__", "__neg__",
})
FIXED = {"tanh": TANH_PARAMS, "sigmoid": LOGISTIC_PARAMS}
DIVISIONS = frozenset({"div", "true_divide", "__truediv__", "__itruediv__"})
# Calls whose output is their first argument's values rearranged: an RSQRT recorded for a
# std follows it through them.
RESHAPES = frozenset({"reshape", "view", "flatten", "unsqueeze", "squeeze", "expand",
                      "expand_as", "view_as", "reshape_as", "contiguous"})
RSQRT_FLOOR = 1e-12  # a flat channel's rounded variance is 0: RSQRT saturates, never inf


def is_opaque(module: nn.Module) -> bool:
    """A module whose calls fake_quant.py rounds itself (at its output, or inside a
    replaced norm): torch.nn's leaf modules, convolutions with their weight
    parametrizations, and mobilize's own rounding modules."""
    if isinstance(module, (*QUANT_NORMS, ActivationQuant, nn.Conv2d, nn.ConvTranspose2d)):
        return True
    own = type(module).__module__.startswith("torch.nn")
    return own and not any(True for _ in module.children())


class FunctionalQuant(TorchFunctionMode):
    """Rounds the functional arithmetic of a forward pass (see the module docstring).

    The first pass (`discover`) creates one ActivationQuant per rounding point; later
    passes reuse them in the same order and fail loudly if the forward takes another path.
    """

    def __init__(self) -> None:
        super().__init__()
        self.points: list[ActivationQuant] = []
        self.discovering = False
        self._next = 0
        self._opaque_depth = 0
        self._live: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self._inverse: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self._rounded: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def was_rounded(self, value: torch.Tensor) -> bool:
        """Whether `value` is the output of one of this mode's roundings (a module whose
        output it is need not round it again)."""
        return value in self._rounded

    def hook_opaque(self, modules: Iterable[nn.Module]) -> list[Any]:
        """Hooks that tell this mode when a call is inside an opaque module."""
        def enter(_module: nn.Module, _inputs: tuple) -> None:
            self._opaque_depth += 1

        def leave(_module: nn.Module, _inputs: tuple, _output: object) -> None:
            self._opaque_depth -= 1

        handles = []
        for module in modules:
            if is_opaque(module):
                handles.append(module.register_forward_pre_hook(enter))
                handles.append(module.register_forward_hook(leave))
        return handles

    def run(self, forward: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._next, self._opaque_depth = 0, 0
        self._live, self._inverse = WeakIdKeyDictionary(), WeakIdKeyDictionary()
        self._rounded = WeakIdKeyDictionary()
        for value in pytree.tree_leaves((args, kwargs)):
            if isinstance(value, torch.Tensor):
                self._live[value] = True
        with self:
            output = forward(*args, **kwargs)
        if not self.discovering and self._next != len(self.points):
            raise RuntimeError(
                f"the forward pass rounded {self._next} functional results, the traced one "
                f"{len(self.points)}: its path depends on the input, which fine-tuning "
                "cannot follow")
        return output

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        derived = any(isinstance(v, torch.Tensor) and v in self._live
                      for v in pytree.tree_leaves((args, kwargs)))
        if not derived or self._opaque_depth:  # a constant's arithmetic, or a module's own
            return self._mark(func(*args, **kwargs), derived)
        if name == "var":
            return self._var(*args, **kwargs)
        if name == "std":
            return self._sqrt(self._var(*args, **kwargs))
        if name == "sqrt":
            return self._sqrt(args[0])
        if name in DIVISIONS and isinstance(args[1], torch.Tensor) and args[1] in self._inverse:
            return self._round(args[0] * self._inverse[args[1]], "mul")
        output = func(*args, **kwargs)
        if name in RESHAPES and args[0] in self._inverse:
            self._inverse[output] = func(self._inverse[args[0]], *args[1:], **kwargs)
        if name in FIXED:
            return self._round(output, name, FIXED[name])
        if name in ROUNDED and not _nearest_resize(name, args, kwargs):
            return self._round(output, name)
        return self._mark(output, True)

    def _mark(self, output: Any, live: bool) -> Any:
        if live:
            for value in pytree.tree_leaves(output):
                if isinstance(value, torch.Tensor):
                    self._live[value] = True
        return output

    def _round(self, value: torch.Tensor, name: str,
               fixed: tuple[float, int] | None = None) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or not torch.is_floating_point(value):
            return self._mark(value, True)
        if self.discovering:
            self.points.append(ActivationQuant(f"functional.{len(self.points)}.{name}", fixed))
        if self._next >= len(self.points):
            raise RuntimeError("the forward pass rounds more functional results than the "
                               "traced one: its path depends on the input")
        quantizer = self.points[self._next]
        self._next += 1
        rounded = quantizer(value)
        self._rounded[rounded] = quantizer
        return self._mark(rounded, True)

    def _var(self, x: torch.Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False,
             *, correction: float | None = None) -> torch.Tensor:
        if isinstance(dim, bool):  # var(unbiased) without dims
            dim, unbiased = None, dim
        dims = tuple(range(x.dim())) if dim is None else (
            (dim,) if isinstance(dim, int) else tuple(dim))
        if correction is None:
            correction = 0.0 if unbiased is False else 1.0
        mean = self._round(x.mean(dims, keepdim=True), "var.mean")
        centered = self._round(x - mean, "var.centered")
        squares = self._round(centered * centered, "var.square")
        variance = self._round(squares.mean(dims, keepdim=True), "var.mean_square")
        if correction:
            count = math.prod(x.shape[d] for d in dims)
            # one MUL by N / (N - correction): onnx_rewrites.fold_scalar_multiplications
            variance = self._round(variance * (count / (count - correction)), "var.unbiased")
        return self._mark(variance if keepdim else variance.squeeze(dims), True)

    def _sqrt(self, variance: torch.Tensor) -> torch.Tensor:
        inverse = self._round(torch.rsqrt(variance.clamp_min(RSQRT_FLOOR)), "rsqrt")
        source = self._rounded.get(variance)
        if source is not None:  # the variance (+ eps) was rounded: the file caps RSQRT by it
            self.points[self._next - 1].cap_as_rsqrt_of(source)
        factor = self._round(variance * inverse, "sqrt")
        self._inverse[factor] = inverse
        return factor


def _nearest_resize(name: str, args: tuple, kwargs: dict) -> bool:
    if name != "interpolate":
        return False
    mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
    return mode == "nearest"


def attach_functional_quant(model: nn.Module) -> tuple[FunctionalQuant, list[Any]]:
    """Install a FunctionalQuant on `model` (its forward wrapped, opaque modules hooked);
    `discover` then finds its rounding points. Returns the mode and the hook handles;
    `detach_functional_quant` undoes the wrapping."""
    mode = FunctionalQuant()
    handles = mode.hook_opaque(model.modules())
    original = model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        return mode.run(original, *args, **kwargs)

    model.forward = forward  # type: ignore[method-assign]
    return mode, handles


def discover(model: nn.Module, mode: FunctionalQuant, example: tuple[torch.Tensor, ...]) -> None:
    """One pass on `example` that creates the mode's rounding points (rounding off)."""
    mode.discovering = True
    try:
        with torch.no_grad():
            model(*example)
    finally:
        mode.discovering = False


def detach_functional_quant(model: nn.Module) -> None:
    model.__dict__.pop("forward", None)
