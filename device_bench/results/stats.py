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


BOOTSTRAP_RESAMPLES = 2000


def ratio_confidence_interval(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    statistic: str = "median",
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """candidate/baseline ratio of a statistic with a percentile-bootstrap interval.

    Returns (ratio, low, high). Both sample sets are resampled independently; a fixed seed
    makes the interval reproducible. A ratio above 1 means the candidate is slower.
    """
    if len(baseline) == 0 or len(candidate) == 0:
        raise ValueError("both runs need latency samples to compare")
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be median or mean, not {statistic!r}")
    reduce = np.median if statistic == "median" else np.mean
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    rng = np.random.default_rng(seed)
    base_boot = reduce(rng.choice(base, size=(resamples, base.size), replace=True), axis=1)
    cand_boot = reduce(rng.choice(cand, size=(resamples, cand.size), replace=True), axis=1)
    ratios = cand_boot / base_boot
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return float(reduce(cand) / reduce(base)), float(low), float(high)
