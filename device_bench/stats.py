"""Derived latency statistics, computed one way everywhere.

The Android app's Java core computes the same figures with the same definitions (linear
interpolation between closest ranks, population standard deviation), and a test checks
both sides agree on the same samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarize(samples: Sequence[float]) -> dict[str, float | int] | None:
    """count/min/max/mean/std/p50/p90/p99 of raw samples; None when there are none."""
    if len(samples) == 0:
        return None
    values = np.asarray(samples, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99], method="linear")
    return {
        "count": int(values.size),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
    }


def coefficient_of_variation(samples: Sequence[float]) -> float:
    values = np.asarray(samples, dtype=np.float64)
    mean = float(values.mean()) if values.size else 0.0
    return float(values.std() / mean) if mean > 0 else 0.0
