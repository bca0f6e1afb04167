"""Does the declared output range fit what the model puts out?

PSNR, the strips and the int8 figures are read against the declared output range
(--output-range, the module's OUTPUT_RANGE). A range the output cannot match — declared
-1..1 for a net that writes 0..255, or a span the output hardly uses — makes every figure
after it misleading, so the export measures the PyTorch output on the calibration samples
and says so before the int8 figures come.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mobilize.contract.specs import ValueRange

# Output beyond the declared range by more than this share of its span: not that range.
MAX_OUTSIDE_SHARE = 0.25
# Output spanning less than this share of the declared span: the range is far too wide.
MIN_USED_SHARE = 0.05


@dataclass(frozen=True)
class MeasuredRange:
    name: str
    low: float
    high: float
    samples: int


def measure(outputs: Mapping[str, np.ndarray]) -> tuple[MeasuredRange, ...]:
    return tuple(MeasuredRange(name, float(np.min(array)), float(np.max(array)), len(array))
                 for name, array in outputs.items() if array.size)


def range_warnings(measured: Sequence[MeasuredRange],
                   declared: ValueRange | None) -> tuple[str, ...]:
    """One warning per output whose measured range the declared one cannot describe."""
    if declared is None or declared.mean is not None:
        return ()  # nothing declared (PSNR then uses the output's own span), or mean/std
    span = declared.high - declared.low
    warnings = []
    for output in measured:
        outside = max(declared.low - output.low, output.high - declared.high, 0.0)
        used = output.high - output.low
        low, high = (_number(v, used) for v in (output.low, output.high))
        where = (f"output {output.name!r} of PyTorch spans {low}..{high} "
                 f"on the {output.samples} calibration samples, but the declared output "
                 f"range is {declared.low:g}..{declared.high:g}")
        if outside > MAX_OUTSIDE_SHARE * span:
            warnings.append(
                f"{where}: the output does not live in that range, so PSNR, SSIM and the "
                "strips below compare on the wrong scale. Declare the range the model "
                "writes (--output-range LOW,HIGH; OUTPUT_RANGE in the module)")
        elif used < MIN_USED_SHARE * span:
            warnings.append(
                f"{where}: it uses {used / span:.1%} of it, so PSNR below is measured over "
                "a span the output never fills (untrained weights, or a range for another "
                "model). Declare the range the model writes (--output-range LOW,HIGH)")
    return tuple(warnings)


def _number(value: float, span: float) -> str:
    """`value` to three significant digits of `span` (251.2 of 0..251 -> 251)."""
    decimals = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 4
    text = f"{value:.{decimals}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text
