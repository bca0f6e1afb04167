"""What a model's inputs look like and which values they expect.

Model modules in models/ declare `INPUTS` (a tuple of InputSpec) and `OUTPUT_RANGE`
(a ValueRange) so that `mobilize export models/x.py:build` needs no --input or --range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobilize.errors import UsageError


@dataclass(frozen=True)
class ValueRange:
    """The values a tensor holds: a plain interval, or a photo normalized by mean/std.

    A photo in [0, 1] maps into the tensor as (photo - mean) / std per channel; for a plain
    interval mean/std are derived so that one formula serves both.
    """

    low: float
    high: float
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.mean is None and not self.low < self.high:
            raise UsageError(
                f"value range {self.low},{self.high} is empty",
                hint="give the range as LOW,HIGH with LOW < HIGH, e.g. --range -1,1",
            )
        if (self.mean is None) != (self.std is None):
            raise UsageError("mean and std must be given together", hint="e.g. --range "
                             "mean=0.485,0.456,0.406:std=0.229,0.224,0.225")

    @classmethod
    def parse(cls, text: str) -> ValueRange:
        """Parse `0,1`, `-1,1`, `0,255` or `mean=a,b,c:std=d,e,f`."""
        text = text.strip()
        if text.startswith("mean="):
            try:
                mean_part, std_part = text.split(":", 1)
                mean = tuple(float(v) for v in mean_part.removeprefix("mean=").split(","))
                std = tuple(float(v) for v in std_part.removeprefix("std=").split(","))
            except ValueError as error:
                raise UsageError(
                    f"cannot read value range {text!r}",
                    hint="write it as mean=0.485,0.456,0.406:std=0.229,0.224,0.225",
                ) from error
            if len(mean) != len(std) or any(s <= 0 for s in std):
                raise UsageError(
                    f"value range {text!r}: mean and std need the same length and std > 0",
                    hint="one mean and one std per channel",
                )
            low = min((0.0 - m) / s for m, s in zip(mean, std, strict=True))
            high = max((1.0 - m) / s for m, s in zip(mean, std, strict=True))
            return cls(low=low, high=high, mean=mean, std=std)
        try:
            low_text, high_text = text.split(",")
            return cls(low=float(low_text), high=float(high_text))
        except ValueError as error:
            raise UsageError(
                f"cannot read value range {text!r}",
                hint="write it as LOW,HIGH (0,1 or -1,1 or 0,255) or mean=...:std=...",
            ) from error

    def __str__(self) -> str:
        if self.mean is not None:
            mean = ",".join(f"{v:g}" for v in self.mean)
            std = ",".join(f"{v:g}" for v in self.std or ())
            return f"mean={mean}:std={std}"
        return f"{self.low:g},{self.high:g}"


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, its NCHW shape and the values it expects."""

    name: str
    shape: tuple[int, ...]
    value_range: ValueRange

    def __post_init__(self) -> None:
        if any(d <= 0 for d in self.shape):
            raise UsageError(
                f"input {self.name!r} has shape {self.shape}; every dimension must be positive",
                hint="static shapes only, e.g. --input 1x3x256x256",
            )

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 4 and self.shape[1] in (1, 3)


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse `1x3x256x256` (or with commas) into a tuple of positive ints."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError as error:
        raise UsageError(
            f"cannot read input shape {text!r}", hint="write it as NxCxHxW, e.g. 1x3x256x256"
        ) from error
    if any(d <= 0 for d in shape):
        raise UsageError(f"input shape {text!r} has a dimension <= 0", hint="e.g. 1x3x256x256")
    return shape


def from_range(values: np.ndarray, value_range: ValueRange) -> np.ndarray:
    """Inverse of to_range for NCHW arrays: back to [0, 1] for viewing."""
    if value_range.mean is not None and value_range.std is not None:
        mean = np.asarray(value_range.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(value_range.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return values * std + mean
    return (values - value_range.low) / (value_range.high - value_range.low)


# Difference images (|TFLite - PyTorch|) are shown this many times brighter, everywhere.
DIFF_AMPLIFICATION = 10.0
