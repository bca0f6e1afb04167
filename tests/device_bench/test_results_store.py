"""SQLite store, JSON output, bootstrap comparison and regression check."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mobilize.bench.result_check import schema_errors
from mobilize.device.errors import UsageError
from mobilize.results.compare import compare_samples, find_regression, parse_fraction
from mobilize.results.stats import ratio_confidence_interval
from mobilize.results.store import get_run, list_runs, open_store, save_run, write_json_atomically


def test_record_results_are_schema_valid(record_factory) -> None:
    assert schema_errors(record_factory("r", [1.0, 2.0])["result"]) == []
    broken = record_factory("r", [1.0])["result"]
    broken["status"] = "exploded"
    assert any("status" in error for error in schema_errors(broken))


def test_a_run_and_its_samples_are_stored_and_read_back(tmp_path: Path, record_factory) -> None:
    db = tmp_path / "r.db"
    samples = [1000.0, 1100.0, 1050.0, 990.0]
    with open_store(db) as connection:
        row = save_run(connection, record_factory("20261123-aaaa", samples))
    with open_store(db) as connection:
        run = get_run(connection, str(row))
        by_prefix = get_run(connection, "20261123-a")
    assert run is not None and by_prefix is not None and by_prefix.id == run.id
    assert run.samples == tuple(samples)
    assert run.p50_us == pytest.approx(float(np.median(samples)))
    assert run.result["config"]["threads"] == 2
    assert run.delegate_applied is True


def test_a_failing_insert_leaves_nothing_behind(tmp_path: Path, record_factory) -> None:
    db = tmp_path / "r.db"
    record = record_factory("dup", [1.0])
    with open_store(db) as connection:
        save_run(connection, record)
        with pytest.raises(sqlite3.IntegrityError):
            save_run(connection, record)  # same run id: the transaction rolls back
        assert len(list_runs(connection)) == 1
        assert connection.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 1


def test_json_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out" / "runs.json"
    write_json_atomically(target, {"runs": [1, 2]})
    assert json.loads(target.read_text()) == {"runs": [1, 2]}
    assert [p.name for p in target.parent.iterdir()] == ["runs.json"]


def test_ratio_interval_brackets_a_real_slowdown() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(1000, 20, 200)
    slower = rng.normal(1200, 20, 200)
    ratio, low, high = ratio_confidence_interval(base, slower)
    assert 1.18 < low < ratio < high < 1.22


def test_ratio_interval_of_identical_distributions_contains_one() -> None:
    rng = np.random.default_rng(2)
    ratio, low, high = ratio_confidence_interval(rng.normal(1000, 50, 100),
                                                 rng.normal(1000, 50, 100))
    assert low < 1.0 < high


def test_regression_needs_both_size_and_significance() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(1000, 10, 100)
    assert find_regression(base, rng.normal(1200, 10, 100), 0.10) is not None
    assert find_regression(base, rng.normal(1050, 10, 100), 0.10) is None
    rows = compare_samples(base, rng.normal(1200, 10, 100))
    assert [row.metric for row in rows] == ["median", "mean"]
    assert rows[0].ratio == pytest.approx(1.2, abs=0.01)


def test_parse_fraction() -> None:
    assert parse_fraction("10%") == pytest.approx(0.10)
    assert parse_fraction("0.25") == pytest.approx(0.25)
    with pytest.raises(UsageError):
        parse_fraction("ten")
