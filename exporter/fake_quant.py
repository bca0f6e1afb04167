"""Fake quantization of a PyTorch generator where the exporter's tflite-int8 file rounds.

Used by `--finetune` (exporter/finetune.py) on a copy of the user's model, never on the model
itself. This module decides where a tensor rounds: it traces one forward pass, hooks a
rounding at each tensor the int8 file keeps and swaps the norms (`insert_fake_quant`), and
`FakeQuantModel` calibrates, switches rounding on and off and strips it all back. The
rounding modules themselves are in exporter/fake_quant_quantizers.py; the exact float
rescaling --finetune applies first, which reads the same trace, in
exporter/fake_quant_equalize.py. What rounds, and how:

- Conv2d / ConvTranspose2d weights: per output channel, symmetric int8 on [-127, 127] (the
  converter's per-channel weights; symmetric rounding commutes with a folded BatchNorm's
  per-channel scale, so the raw weight's grid is the folded one's).
- Activations: per tensor, asymmetric int8 (zero exact), at every tensor the int8 file keeps:
  convolution outputs not folded into a BatchNorm nor fused with a following ReLU, norm and
  activation outputs, and the outputs of the model's own modules that are new tensors (a
  residual sum `x + self.body(x)`, the model's output). Pads, nearest upsampling and pixel
  shuffles only move values and keep their input's scale: not rounded again.
- Fixed scales as TFLite fixes them: each model input on its declared range, TANH 1/128
  (zero point 0), LOGISTIC 1/256 (zero point -128).
- InstanceNorm2d and GroupNorm are replaced by modules that compute what
  `decompose_instance_norm` / `decompose_group_norm` write (ReduceMean, Sub, Mul, ReduceMean,
  Add eps, RSQRT, Mul, then the affine Mul/Add) and round every intermediate.
- Ranges as the exporter takes them: a calibration pass in float over the training samples,
  the median over samples of each sample's own min/max for spatial tensors, min/max over all
  samples for per-image statistics ((N, C, 1, 1) means and variances).

- The arithmetic a model writes in its own forward() with functions (AdaIN's statistics,
  `torch.tanh(...)`, a sum followed by more ops): exporter/fake_quant_functional.py, a
  torch function mode that rounds each such call's output as the file does.

Not modelled: TFLite's integer kernels themselves (RSQRT's table, MEAN's arithmetic), int32
biases, and the weights of a functional convolution (`F.conv2d(x, self.weight)`: its output
rounds, its weight does not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from mobilize.exporter.fake_quant_functional import (
    FunctionalQuant,
    attach_functional_quant,
    detach_functional_quant,
    discover,
)
from mobilize.exporter.fake_quant_quantizers import (
    LOGISTIC_PARAMS,
    QUANT_NORMS,
    SPATIAL_QUANTILE,
    TANH_PARAMS,
    ActivationQuant,
    QuantGroupNorm,
    QuantInstanceNorm,
    WeightQuant,
    fixed_input_range,
)

CONVS = (nn.Conv2d, nn.ConvTranspose2d)
FUSED_ACTIVATIONS = (nn.ReLU, nn.ReLU6)  # the converter fuses these into CONV_2D / ADD / MUL
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.ELU, nn.SiLU,
               nn.Hardswish, nn.GELU)
# Modules that only move or copy values: their int8 output keeps the input's scale.
PASS_THROUGH = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d,
                nn.PixelShuffle, nn.PixelUnshuffle, nn.Identity, nn.Dropout, nn.Flatten,
                nn.MaxPool2d)



@dataclass
class FakeQuantModel:
    """A model with fake quantization inserted in place; `strip()` gives the plain model
    back (original norm modules, hooks and parametrizations removed, float weights)."""

    model: nn.Module
    quantizers: list[ActivationQuant] = field(default_factory=list)
    weight_quants: list[WeightQuant] = field(default_factory=list)
    handles: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list)
    swaps: list[tuple[nn.Module, str, nn.Module]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # norms left as they are, with why
    functional: FunctionalQuant | None = None  # the forward's own arithmetic, rounded

    def all_quantizers(self) -> Iterator[ActivationQuant]:
        seen: set[int] = set()
        functional = self.functional.points if self.functional else []
        for module in (*self.quantizers, *functional, *self.model.modules()):
            if isinstance(module, ActivationQuant) and id(module) not in seen:
                seen.add(id(module))
                yield module

    def set_rounding(self, enabled: bool) -> None:
        for quantizer in self.all_quantizers():
            quantizer.rounding = enabled
        for weight in self.weight_quants:
            weight.rounding = enabled

    @torch.no_grad()
    def calibrate(self, batches: Iterator[Sequence[torch.Tensor]],
                  quantile: float = SPATIAL_QUANTILE) -> None:
        """Ranges as the exporter takes them, from the float model on these batches: each
        spatial tensor's `quantile` over samples of their own min/max (1.0: min/max)."""
        rounding = any(w.rounding for w in self.weight_quants) or any(
            q.rounding for q in self.all_quantizers())
        self.set_rounding(False)
        quantizers = list(self.all_quantizers())
        for quantizer in quantizers:
            quantizer.collect()
        for batch in batches:
            self.model(*batch)
        self.settle(quantile)
        self.set_rounding(rounding)

    def settle(self, quantile: float) -> None:
        """Ranges from the last calibration's extremes at another quantile."""
        for quantizer in self.all_quantizers():
            quantizer.settle(quantile)

    def rounding_points(self) -> int:
        return sum(q.quantize for q in self.all_quantizers())

    def strip(self) -> nn.Module:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        detach_functional_quant(self.model)
        self.functional = None
        for parent, name, original in self.swaps:
            setattr(parent, name, original)
        self.swaps.clear()
        for module in self.model.modules():
            if parametrize.is_parametrized(module, "weight"):
                with torch.no_grad():
                    parametrize.remove_parametrizations(module, "weight",
                                                        leave_parametrized=False)
        return self.model


# Off only for the ablation (benchmarks/finetune_int8.py --without-functional).
ROUND_FUNCTIONAL = True


def _output_hook(quantized: FakeQuantModel, quantizer: ActivationQuant) -> Callable[..., object]:
    def hook(_module: nn.Module, _inputs: tuple, output: object) -> object:
        if not isinstance(output, torch.Tensor):
            return output
        if quantized.functional and quantized.functional.was_rounded(output):
            # a residual sum `x + self.body(x)`: the forward's own add rounded it already
            quantizer.quantize = False
        return quantizer(output)
    return hook


def _replace_norms(quantized: FakeQuantModel) -> None:
    model = quantized.model
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            full = f"{parent_name}.{name}" if parent_name else name
            if isinstance(child, nn.InstanceNorm2d):
                if child.track_running_stats:
                    quantized.skipped.append(f"{full}: InstanceNorm2d with running statistics")
                    continue
                replacement: nn.Module = QuantInstanceNorm(child, full)
            elif isinstance(child, nn.GroupNorm):
                replacement = QuantGroupNorm(child, full)
            else:
                continue
            setattr(parent, name, replacement)
            quantized.swaps.append((parent, name, child))


def _quantize_weights(quantized: FakeQuantModel) -> None:
    for module in quantized.model.modules():
        if isinstance(module, CONVS):
            weight = WeightQuant(1 if isinstance(module, nn.ConvTranspose2d) else 0)
            parametrize.register_parametrization(module, "weight", weight)
            quantized.weight_quants.append(weight)


@dataclass
class _Call:
    module: nn.Module
    name: str
    leaf: bool
    inputs: tuple[int, ...]
    output: torch.Tensor | None


def _is_leaf(module: nn.Module) -> bool:
    """A module computing its output itself (a parametrized conv has children: its weight's
    parametrizations)."""
    return isinstance(module, (*QUANT_NORMS, *CONVS)) or not any(True for _ in module.children())


def _trace(model: nn.Module, example: Sequence[torch.Tensor]) -> list[_Call]:
    """Every module call of one forward pass, in the order the calls returned (a container
    after its children); the calls inside a replaced norm are left out."""
    calls: list[_Call] = []
    names = {id(m): n for n, m in model.named_modules()}
    # the calls inside a replaced norm, and a conv's weight parametrizations
    left_out = {id(m) for owner in model.modules() if isinstance(owner, (*QUANT_NORMS, *CONVS))
                for m in owner.modules() if m is not owner}
    handles = []

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        ids = tuple(id(i) for i in inputs if isinstance(i, torch.Tensor))
        kept = output if isinstance(output, torch.Tensor) else None
        calls.append(_Call(module, names.get(id(module), ""), _is_leaf(module), ids, kept))

    for module in model.modules():
        if id(module) not in left_out:
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _leaf_readers(calls: Sequence[_Call]) -> dict[int, list[nn.Module]]:
    """Call index -> the leaf modules that read its output before anything overwrote it (an
    in-place ReLU returns its input tensor: from then on that tensor is the ReLU's)."""
    last_producer: dict[int, int] = {}
    readers: dict[int, list[nn.Module]] = {}
    for index, call in enumerate(calls):
        if call.leaf:
            for tensor_id in call.inputs:
                if tensor_id in last_producer:
                    readers.setdefault(last_producer[tensor_id], []).append(call.module)
        if call.output is not None and (call.leaf or id(call.output) not in last_producer):
            last_producer[id(call.output)] = index
    return readers


def _place_output_quants(quantized: FakeQuantModel, example: Sequence[torch.Tensor]) -> None:
    """Hook a rounding at each module output the int8 file keeps as a tensor."""
    calls = _trace(quantized.model, example)
    readers = _leaf_readers(calls)
    produced: set[int] = set()  # tensors some call already returned
    placed: set[int] = set()
    for index, call in enumerate(calls):
        module, output = call.module, call.output
        if output is None:
            continue
        out_id = id(output)
        new_value = call.leaf or out_id not in produced  # a container's own sum, not a child's
        produced.add(out_id)
        read_by = readers.get(index, [])
        fused = bool(read_by) and all(isinstance(r, FUSED_ACTIVATIONS) for r in read_by)
        folded = bool(read_by) and all(isinstance(r, nn.BatchNorm2d) for r in read_by)
        if isinstance(module, QUANT_NORMS):
            module.output_quant.quantize = not fused
            continue
        if not new_value or id(module) in placed or isinstance(module, PASS_THROUGH) or (
                isinstance(module, nn.Upsample) and module.mode == "nearest"):
            continue
        if isinstance(module, (*CONVS, nn.BatchNorm2d)) and (fused or folded):
            continue  # fused into the conv (a ReLU) or folded into its weights (a BatchNorm)
        if isinstance(module, nn.Tanh):
            quantizer = ActivationQuant(call.name or "tanh", fixed=TANH_PARAMS)
        elif isinstance(module, nn.Sigmoid):
            quantizer = ActivationQuant(call.name or "sigmoid", fixed=LOGISTIC_PARAMS)
        else:
            quantizer = ActivationQuant(call.name or "output")
        placed.add(id(module))
        quantized.quantizers.append(quantizer)
        quantized.handles.append(module.register_forward_hook(_output_hook(quantized, quantizer)))


def insert_fake_quant(model: nn.Module, example: Sequence[torch.Tensor],
                      input_ranges: Sequence[tuple[float, float] | None]) -> FakeQuantModel:
    """Fake-quantize `model` in place; `example` is one batch of inputs for the trace, and
    `input_ranges` each input's declared (low, high) (None: calibrated like an activation).
    Rounding starts off: calibrate, then `set_rounding(True)`."""
    quantized = FakeQuantModel(model)
    _replace_norms(quantized)
    _quantize_weights(quantized)
    _place_output_quants(quantized, example)
    inputs = [ActivationQuant(f"input{i}", fixed=fixed_input_range(*r) if r else None)
              for i, r in enumerate(input_ranges)]
    quantized.quantizers.extend(inputs)

    def round_inputs(_module: nn.Module, args: tuple) -> tuple:
        return tuple(q(a) for q, a in zip(inputs, args, strict=False)) + args[len(inputs):]

    quantized.handles.append(model.register_forward_pre_hook(round_inputs))
    if ROUND_FUNCTIONAL:  # last: its hooks must run after the output roundings placed above
        quantized.functional, handles = attach_functional_quant(model)
        quantized.handles.extend(handles)
        discover(model, quantized.functional, tuple(example))
    return quantized
