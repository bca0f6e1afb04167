"""`bench --baseline ID --max-regression 10%`: fail only on a slowdown the data supports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mobilize.device.errors import RegressionError, UsageError
from mobilize.results.compare import find_regression
from mobilize.results.store import StoredRun, get_run, open_store


def load_baseline(db_path: Path, key: str) -> StoredRun:
    with open_store(db_path) as connection:
        run = get_run(connection, key)
    if run is None:
        raise UsageError(
            f"no stored run {key!r} in {db_path}",
            hint="`mobilize results list` shows the stored runs",
        )
    if not run.samples:
        raise UsageError(f"run {key} has no latency samples to compare against")
    return run


def check_regressions(baseline: StoredRun, records: Sequence[dict[str, Any]], allowed: float,
                      announce: Callable[[str], None] = print) -> None:
    found = []
    for record in records:
        samples = (record["result"].get("latency") or {}).get("samples") or []
        regression = find_regression(baseline.samples, samples, allowed) if samples else None
        if regression:
            found.append(f"{record['model_name']} on {record['serial']}: {regression.describe()}")
    if found:
        raise RegressionError(
            f"slower than baseline run {baseline.id} ({baseline.model_name}):\n  "
            + "\n  ".join(found),
            hint="compare in detail with `mobilize results compare A B`",
        )
    announce(f"no regression against run {baseline.id} (allowed {allowed:.0%})")


