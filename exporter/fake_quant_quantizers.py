"""The rounding modules of the fake quantization (exporter/fake_quant.py inserts them).

Each rounds a tensor as the tflite-int8 file does, and knows nothing of where it sits:
- ActivationQuant: per-tensor asymmetric int8 with a range calibrated like the exporter's
  (`collect()` then `settle()`), or a range TFLite fixes (a model input, TANH, LOGISTIC).
- WeightQuant: a parametrization rounding a conv weight per output channel, symmetric int8.
- QuantInstanceNorm / QuantGroupNorm: the norms as `decompose_instance_norm` /
  `decompose_group_norm` write them, every intermediate rounded by its own ActivationQuant.
Deciding which tensors round (the trace of a forward pass, what fuses or folds away) is
exporter/fake_quant.py's part.
"""

from __future__ import annotations

import torch
from torch import nn

from mobilize.exporter.tflite_activations import rsqrt_cap

QMIN, QMAX = -128, 127
WEIGHT_QMAX = 127
SPATIAL_QUANTILE = 0.5  # the exporter's default per-sample quantile (int8_ranges.RangeOptions)


def quant_params(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point of an int8 tensor on [low, high], widened to hold zero."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / (QMAX - QMIN) or 1e-8
    zero_point = int(min(QMAX, max(QMIN, round(QMIN - low / scale))))
    return scale, zero_point


class ActivationQuant(nn.Module):
    """Per-tensor asymmetric int8 rounding with a range calibrated like the exporter's.

    `collect()` starts a calibration pass (extremes per sample are gathered, nothing is
    rounded), `settle()` sets the range from them. `fixed` (scale, zero point) is a range TFLite
    fixes (an input, TANH, LOGISTIC): never calibrated."""

    def __init__(self, name: str, fixed: tuple[float, int] | None = None) -> None:
        super().__init__()
        self.name = name
        self.fixed = fixed
        self.rounding = False
        self.collecting = False
        self.quantize = True  # False: TFLite fuses this point away (set by the tracer)
        self.spatial: bool | None = None
        self.register_buffer("low", torch.tensor(0.0))
        self.register_buffer("high", torch.tensor(0.0))
        self._lows: list[torch.Tensor] = []
        self._highs: list[torch.Tensor] = []
        # An RSQRT's rounding: the quantizer of its input (in a tuple, so that nn.Module does
        # not register it as a child)
        self._rsqrt_of: tuple[ActivationQuant, ...] = ()

    def cap_as_rsqrt_of(self, source: ActivationQuant) -> None:
        """Round as tflite_activations._cap_rsqrt leaves an int8 RSQRT: on [0, 1/sqrt(the
        input's step)] where that is below the calibrated top and the input's grid holds
        zero; without it the student rounds 1/std on [0, 1/sqrt(eps)] and is several dB
        more pessimistic than the file it stands for."""
        self._rsqrt_of = (source,)

    def collect(self) -> None:
        self.collecting = True
        self._lows, self._highs = [], []

    def settle(self, quantile: float = SPATIAL_QUANTILE) -> None:
        """The range from the extremes collected (kept: settle again with another quantile)."""
        self.collecting = False
        if not self._lows or self.fixed is not None:
            return
        lows, highs = torch.cat(self._lows), torch.cat(self._highs)
        if self.spatial and quantile < 1.0:
            low = torch.quantile(lows, 1.0 - quantile)
            high = torch.quantile(highs, quantile)
        else:
            low, high = lows.min(), highs.max()
        self.low.fill_(float(low))
        self.high.fill_(float(high))

    def params(self) -> tuple[float, int]:
        if self.fixed:
            return self.fixed
        low, high = float(self.low), float(self.high)
        if self._rsqrt_of:
            step, zero_point = self._rsqrt_of[0].params()
            cap = rsqrt_cap(step * (QMIN - zero_point), step * (QMAX - zero_point), step,
                            (low, high))
            if cap is not None:
                return quant_params(0.0, cap)
        return quant_params(low, high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quantize or not torch.is_floating_point(x):
            return x
        if self.collecting:
            flat = x.detach().flatten(1).float()
            self.spatial = x.dim() == 4 and x.shape[2] * x.shape[3] > 1
            self._lows.append(flat.amin(1).cpu())
            self._highs.append(flat.amax(1).cpu())
            return x
        if not self.rounding:
            return x
        scale, zero_point = self.params()
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, QMIN, QMAX)


def fixed_input_range(low: float, high: float) -> tuple[float, int]:
    return quant_params(low, high)


TANH_PARAMS = (1.0 / 128, 0)
LOGISTIC_PARAMS = (1.0 / 256, -128)


class WeightQuant(nn.Module):
    """Parametrization: a conv weight as tflite-int8 stores it, per output channel."""

    def __init__(self, channel_axis: int) -> None:
        super().__init__()
        self.channel_axis = channel_axis
        self.rounding = False

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.rounding:
            return weight
        dims = [d for d in range(weight.dim()) if d != self.channel_axis]
        scale = (weight.detach().abs().amax(dims) / WEIGHT_QMAX).clamp_min(1e-12)
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(
            weight, scale.float(), zero, self.channel_axis, -WEIGHT_QMAX, WEIGHT_QMAX)


def _rsqrt(var_eps: torch.Tensor, eps: float) -> torch.Tensor:
    """RSQRT of a rounded variance + eps: an int8 grid coarser than eps rounds a flat
    channel's to zero, where int8 RSQRT saturates; never infinity here (nor its gradient)."""
    return torch.rsqrt(var_eps.clamp_min(eps))


def _affine(q: nn.ModuleDict, normed: torch.Tensor, weight: torch.Tensor | None,
            bias: torch.Tensor | None) -> torch.Tensor:
    """normed * weight + bias with the roundings the int8 file has: the converter folds a
    multiplication by ones and an addition of zeros away (then `normed` is the norm's last
    op, where a following ReLU fuses), so those steps round only when their parameters
    are not trivial. A calibration pass sees every step, so none is left uncalibrated."""
    collecting = q["out"].collecting
    scale = weight is not None and (collecting or not bool(torch.all(weight == 1)))
    shift = bias is not None and (collecting or not bool(torch.all(bias == 0)))
    if not (scale or shift):
        return q["out"](normed)
    value = q["normed"](normed)
    if scale:
        assert weight is not None
        value = value * weight.view(1, -1, 1, 1)
        if not shift:
            return q["out"](value)
        value = q["scaled"](value)
    assert bias is not None
    return q["out"](value + bias.view(1, -1, 1, 1))


class QuantInstanceNorm(nn.Module):
    """InstanceNorm2d as `decompose_instance_norm` writes it, every intermediate rounded:
    mean, x - mean, its square, the variance, + eps, RSQRT, the product, * scale, + bias."""

    STEPS = ("mean", "centered", "sq", "var", "var_eps", "rsqrt", "normed", "scaled", "out")

    def __init__(self, norm: nn.InstanceNorm2d, name: str) -> None:
        super().__init__()
        self.original = norm
        self.eps = norm.eps
        self.q = nn.ModuleDict({step: ActivationQuant(f"{name}.{step}") for step in self.STEPS})
        self.q["rsqrt"].cap_as_rsqrt_of(self.q["var_eps"])

    @property
    def output_quant(self) -> ActivationQuant:
        return self.q["out"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.q
        mean = q["mean"](x.mean((2, 3), keepdim=True))
        centered = q["centered"](x - mean)
        var = q["var"](q["sq"](centered * centered).mean((2, 3), keepdim=True))
        rsqrt = q["rsqrt"](_rsqrt(q["var_eps"](var + self.eps), self.eps))
        return _affine(q, centered * rsqrt, self.original.weight, self.original.bias)


class QuantGroupNorm(nn.Module):
    """GroupNorm as `decompose_group_norm` writes it: channel means over H, W, then a 1x1
    conv averaging them within each group (for the mean and the variance), every
    intermediate rounded, then torch's weight Mul and bias Add."""

    STEPS = ("mean_c", "mean", "centered", "sq", "var_c", "var", "var_eps", "rsqrt", "normed",
             "scaled", "out")

    def __init__(self, norm: nn.GroupNorm, name: str) -> None:
        super().__init__()
        self.original = norm
        self.groups = norm.num_groups
        self.eps = norm.eps
        self.q = nn.ModuleDict({step: ActivationQuant(f"{name}.{step}") for step in self.STEPS})
        self.q["rsqrt"].cap_as_rsqrt_of(self.q["var_eps"])

    @property
    def output_quant(self) -> ActivationQuant:
        return self.q["out"]

    def _group_mean(self, per_channel: torch.Tensor) -> torch.Tensor:
        n, c = per_channel.shape[:2]
        grouped = per_channel.view(n, self.groups, c // self.groups)
        return grouped.mean(2, keepdim=True).expand(-1, -1, c // self.groups).reshape(n, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.q
        mean = q["mean"](self._group_mean(q["mean_c"](x.mean((2, 3), keepdim=True))))
        centered = q["centered"](x - mean)
        sq = q["sq"](centered * centered)
        var = q["var"](self._group_mean(q["var_c"](sq.mean((2, 3), keepdim=True))))
        rsqrt = q["rsqrt"](_rsqrt(q["var_eps"](var + self.eps), self.eps))
        return _affine(q, centered * rsqrt, self.original.weight, self.original.bias)


QUANT_NORMS = (QuantInstanceNorm, QuantGroupNorm)
