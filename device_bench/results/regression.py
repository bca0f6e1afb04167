"""`bench --baseline ID --max-regression 10%`: fail only on a slowdown the data supports.

Why not the bootstrap interval of one run against the other: it covers the noise *inside* a
run, and two runs of the very same file differ by more than that. The device's speed wanders
between runs (other load, clocks, thermal state, where the scheduler puts the threads), and a
run's samples share its drift, so no resampling inside one run can see it: three gates of
the baseline's own file on the emulated device failed at +33..+38 % with intervals that
excluded 1. The gate therefore models a run's log median latency as

    y = level(file, device) + drift(run),      drift ~ Normal(0, sigma^2)

and measures sigma, the run-to-run spread, instead of assuming it away:

* from repeats: the stored successful runs of one file (sha256) on one device with the same
  runner, delegate, threads and GPU precision form a group (every file benched more than once
  there counts, not only the baseline's), and so do this invocation's runs of one model
  (`--repeat`); SS = squared deviations from each group's mean, df = sum(n_g - 1);
* until there are many: a prior sigma0 weighted as PRIOR_DF degrees of freedom,
  sigma^2 = (PRIOR_DF * sigma0^2 + SS) / (PRIOR_DF + df). sigma0 is the larger of MIN_DRIFT
  and the drift seen inside the compared runs: each run split into BLOCKS blocks in time
  order, the variance of the blocks' log medians. How far the blocks of one run are apart
  samples how the device's speed wanders over a tenth of a run; between runs, further apart
  in time, it wanders at least as much. On the emulated device on a shared 2-core machine
  that tracked the spread of 15-30 repeats (1 thread: blocks ~0.06, runs 0.075-0.10;
  4 threads on 2 cores: blocks ~0.3, runs 0.30-0.34). A run whose own blocks wander more
  than sigma counts with its own block variance instead (it is that much less sure).

The baseline's level is the mean log median of its pool (run ID and the stored repeats of
its file on its device), the candidate's the mean over its runs in this invocation; the
CONFIDENCE interval of the difference uses Student's t at PRIOR_DF + df degrees of freedom,
sigma being estimated. The gate fails when the ratio is above 1 + margin AND the interval
excludes 1 (the rule README states). Why 99 % and not 95 %: a CI gate runs on every build,
and 2.5 % false alarms is one in 40 builds. Replaying recorded emulator runs (1 thread,
100 runs, 3 stored baseline runs then 10 gates): 95 %: 7 of 300 single-run gates of an
identical file failed, 99 %: 2 of 300, both at a lasting step in this shared machine's
speed; with `--repeat 3` 0 of 40. A file with one more conv layer (+16..43 %) was caught in
30 of 30 gates with `--repeat 5`, 24 of 30 with `--repeat 3`. Requiring the interval to
exclude 1 + margin instead caught it in 21 of 30 with `--repeat 5` even at 95 %: too weak
at this spread. With 4 threads on the 2 cores (spread ~30 %): 0 of 260 false alarms, and
the slower file goes uncaught, as it must when one run's noise is larger than the change.

What no stored baseline can tell from a regression is such a lasting step in the device's
speed since run ID; bench the baseline's file in the same invocation (`bench base.tflite
new.tflite --baseline ID --repeat 3`) and its fresh interleaved runs are the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from mobilize.device.errors import RegressionError, UsageError
from mobilize.results.compare import Regression
from mobilize.results.store import StoredRun, get_run, open_store, similar_runs

BLOCKS = 10  # time-ordered blocks per run for the drift seen inside a run
MIN_DRIFT = 0.10  # sigma0 is never below 10 % run to run (log scale) without repeats to say so
PRIOR_DF = 4.0  # how many degrees of freedom of repeats the prior weighs as
HISTORY_RUNS = 200  # stored runs on the device looked at for repeats
CONFIDENCE = 0.99  # two-sided: where the model holds, 0.5 % false alarms at most


@dataclass(frozen=True)
class Baseline:
    """Run ID and what the store knew about its device when the bench started (read before
    the new runs are stored, so a candidate is never part of its own baseline)."""

    run: StoredRun
    history: tuple[StoredRun, ...] = ()  # successful runs with samples, same device and config

    @property
    def id(self) -> int:
        return self.run.id

    @property
    def model_name(self) -> str:
        return self.run.model_name

    @property
    def samples(self) -> tuple[float, ...]:
        return self.run.samples

    @property
    def pool(self) -> list[StoredRun]:
        """Run ID and the stored repeats of its file on its device."""
        same = [r for r in self.history
                if r.model_sha256 == self.run.model_sha256 and r.id != self.run.id]
        return [self.run, *same]

    def repeat_groups(self) -> list[list[float]]:
        """Log medians of every file stored more than once (the baseline's pool included)."""
        groups: dict[str, list[float]] = {}
        for run in {r.id: r for r in [*self.history, self.run]}.values():
            groups.setdefault(run.model_sha256, []).append(log_median(run.samples))
        return [g for g in groups.values() if len(g) > 1]


@dataclass(frozen=True)
class GateResult:
    ratio: float
    low: float
    high: float
    spread: float  # sigma, the run-to-run spread of log medians used
    repeats_df: int  # degrees of freedom measured from repeats (0: the prior alone)
    baseline_runs: int
    candidate_runs: int

    def failed(self, allowed: float) -> bool:
        return self.ratio > 1.0 + allowed and self.low > 1.0

    def basis(self) -> str:
        where = (f"measured from repeated runs ({self.repeats_df} degrees of freedom)"
                 if self.repeats_df else f"assumed ({MIN_DRIFT:.0%}, or the drift inside the "
                 "runs): no repeated runs stored yet; `--repeat 3` measures it")
        return (f"{self.baseline_runs} baseline run(s) against {self.candidate_runs}; "
                f"run-to-run spread {self.spread:.1%} {where}")

    def describe(self) -> str:
        return (f"median {self.ratio - 1:+.1%} ({CONFIDENCE:.0%} interval {self.low - 1:+.1%} to "
                f"{self.high - 1:+.1%}; {self.basis()})")


def log_median(samples: Sequence[float]) -> float:
    return math.log(float(np.median(np.asarray(samples, dtype=np.float64))))


def block_drift_variance(samples: Sequence[float], blocks: int = BLOCKS) -> float | None:
    """Variance of the log medians of `blocks` consecutive blocks (time order); None when
    the run is too short to split."""
    values = np.asarray(samples, dtype=np.float64)
    count = min(blocks, values.size // 2)
    if count < 2 or np.any(values <= 0):
        return None
    medians = [np.median(part) for part in np.array_split(values, count)]
    return float(np.var(np.log(medians), ddof=1))


def t_quantile(probability: float, df: float) -> float:
    """Student's t quantile by the Cornish-Fisher series in 1/df (Abramowitz & Stegun
    26.7.5): within 0.3 % of the exact value for df >= 4, and df is never below PRIOR_DF."""
    z = NormalDist().inv_cdf(probability)
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z)
            / (92160 * df**4))


def gate(baseline_runs: Sequence[Sequence[float]], candidate_runs: Sequence[Sequence[float]],
         repeat_groups: Sequence[Sequence[float]] = ()) -> GateResult:
    """The between-run model of the module docstring. Runs are sample lists (time order);
    repeat_groups are log medians of repeated runs of one file each (baseline pool, other
    files, the candidate's repeats are added here)."""
    if not baseline_runs or not candidate_runs:
        raise ValueError("both sides need at least one run with samples")
    base = [log_median(s) for s in baseline_runs]
    cand = [log_median(s) for s in candidate_runs]
    groups = [list(g) for g in repeat_groups if len(g) > 1]
    if len(cand) > 1:
        groups.append(cand)
    squares = sum(float(np.sum((np.asarray(g) - np.mean(g)) ** 2)) for g in groups)
    df = sum(len(g) - 1 for g in groups)
    inside_base = [block_drift_variance(s) or 0.0 for s in baseline_runs]
    inside_cand = [block_drift_variance(s) or 0.0 for s in candidate_runs]
    prior = max(MIN_DRIFT**2, float(np.mean(inside_base + inside_cand)))
    variance = (PRIOR_DF * prior + squares) / (PRIOR_DF + df)
    difference = float(np.mean(cand) - np.mean(base))
    # Each run counts with sigma^2, or with its own block variance where that is larger (a
    # run whose own blocks wander more than sigma says is that much less sure of itself).
    error = math.sqrt(sum(max(variance, v) for v in inside_base) / len(base) ** 2
                      + sum(max(variance, v) for v in inside_cand) / len(cand) ** 2)
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, PRIOR_DF + df) * error
    return GateResult(ratio=math.exp(difference), low=math.exp(difference - half),
                      high=math.exp(difference + half), spread=math.sqrt(variance),
                      repeats_df=df, baseline_runs=len(base), candidate_runs=len(cand))


def load_baseline(db_path: Path, key: str) -> Baseline:
    with open_store(db_path, create=False) as connection:
        run = get_run(connection, key)
        if run is None:
            raise UsageError(
                f"no stored run {key!r} in {db_path}",
                hint="`mobilize results list` shows the stored runs",
            )
        if not run.samples:
            raise UsageError(f"run {key} has no latency samples to compare against")
        history = tuple(similar_runs(connection, run, HISTORY_RUNS))
    return Baseline(run, history)


def _samples(record: dict[str, Any]) -> list[float]:
    return list((record["result"].get("latency") or {}).get("samples") or [])


def _file_key(record: dict[str, Any]) -> str:
    return record.get("model_sha256") or record["model_name"]


def check_regressions(baseline: Baseline | StoredRun, records: Sequence[dict[str, Any]],
                      allowed: float, announce: Callable[[str], None] = print) -> None:
    """Gate each model on each device (its runs of this invocation pooled) against the
    baseline; raise RegressionError naming every one that failed.

    When the baseline's own file was benched in this invocation beside other models
    (`bench base.tflite new.tflite --baseline ID --repeat 3`: interleaved), its fresh runs on
    that device are the baseline instead of the stored ones: a step in the device's speed
    since run ID (another job started, a new OS build) then cancels out, which no stored
    baseline can tell from a regression.
    """
    if isinstance(baseline, StoredRun):
        baseline = Baseline(baseline)
    new_ids = {record["result"].get("run_id") for record in records}
    stored = [r.samples for r in baseline.pool if r.run_id not in new_ids or r is baseline.run]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        if _samples(record):
            groups.setdefault((record["serial"], _file_key(record)), []).append(record)
    base_file = baseline.run.model_sha256
    files_on: dict[str, set[str]] = {}
    for serial, file in groups:
        files_on.setdefault(serial, set()).add(file)
    stored_repeats = baseline.repeat_groups()
    found, passed = [], []
    for (serial, file), runs in groups.items():
        if file == base_file and len(files_on[serial]) > 1:
            continue  # the baseline's file beside other models: it is their fresh baseline
        fresh = groups.get((serial, base_file), []) if file != base_file else []
        pool = [_samples(r) for r in fresh] or stored
        repeats = stored_repeats + ([[log_median(s) for s in pool]] if fresh else [])
        result = gate(pool, [_samples(r) for r in runs], repeats)
        line = f"{runs[0]['model_name']} on {serial}"
        if fresh:
            line += f" (against its {len(fresh)} interleaved run(s) of the baseline's file)"
        if result.failed(allowed):
            regression = Regression("median latency", result.ratio, result.low, result.high,
                                    allowed, basis=result.basis(), confidence=CONFIDENCE)
            found.append(f"{line}: {regression.describe()}")
        else:
            passed.append(f"{line}: {result.describe()}")
    if found:
        raise RegressionError(
            f"slower than baseline run {baseline.id} ({baseline.model_name}):\n  "
            + "\n  ".join(found),
            hint="compare in detail with `mobilize results compare A B`; the interval "
            "includes the run-to-run spread, and `--repeat N` narrows it",
        )
    announce(f"no regression against run {baseline.id} (allowed {allowed:.0%})"
             + "".join(f"\n  {line}" for line in passed))
