"""Compare two runs: ratios of latency statistics with bootstrap confidence intervals."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mobilize.device.errors import UsageError
from mobilize.report.results_tables import ComparisonRow
from mobilize.results.stats import ratio_confidence_interval


@dataclass(frozen=True)
class Regression:
    metric: str
    ratio: float
    low: float
    high: float
    allowed: float
    basis: str = ""  # what the interval stands on (the gate's run-to-run spread)
    confidence: float = 0.95

    def describe(self) -> str:
        basis = f"; {self.basis}" if self.basis else ""
        return (
            f"{self.metric} is {self.ratio - 1:+.1%} ({self.confidence:.0%} CI "
            f"{self.low - 1:+.1%} to "
            f"{self.high - 1:+.1%}{basis}), more than the allowed {self.allowed:.0%}"
        )


def parse_fraction(text: str) -> float:
    """'10%' -> 0.10, '0.1' -> 0.10."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", text)
    if not match:
        raise UsageError(
            f"--max-regression {text!r} is not a percentage", hint="write it like 10% (or 0.1)"
        )
    value = float(match.group(1))
    return value / 100.0 if match.group(2) else value


def compare_samples(baseline: Sequence[float], candidate: Sequence[float]) -> list[ComparisonRow]:
    """Median and mean of candidate over baseline, each with a 95% bootstrap interval."""
    rows = []
    for statistic in ("median", "mean"):
        ratio, low, high = ratio_confidence_interval(baseline, candidate, statistic=statistic)
        base_value = float(_reduce(statistic, baseline))
        cand_value = float(_reduce(statistic, candidate))
        rows.append(ComparisonRow(statistic, base_value, cand_value, ratio, low, high))
    return rows


def find_regression(
    baseline: Sequence[float], candidate: Sequence[float], allowed: float
) -> Regression | None:
    """Two sample lists alone: the median is slower by more than `allowed` and the bootstrap
    interval excludes "no change" (low > 1). That interval covers the noise inside the two
    runs only, not the drift between runs; the bench gate (`--baseline`) is
    mobilize.results.regression.gate, which measures that drift too."""
    ratio, low, high = ratio_confidence_interval(baseline, candidate, statistic="median")
    if ratio > 1.0 + allowed and low > 1.0:
        return Regression("median latency", ratio, low, high, allowed)
    return None


def _reduce(statistic: str, values: Sequence[float]) -> float:
    import numpy as np

    return float(np.median(values) if statistic == "median" else np.mean(values))
