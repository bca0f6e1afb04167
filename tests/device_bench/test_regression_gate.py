"""The --baseline gate under run-to-run drift: it holds for the same file, it catches a
slower one. Synthetic runs first (fast, seeded), then the measurement on the emulated
device, whose figures vary with this machine's load and are printed (pytest -s)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mobilize.cli import main
from mobilize.device.errors import EXIT_REGRESSION, RegressionError
from mobilize.emulator.testing import running_emulator
from mobilize.results.compare import find_regression
from mobilize.results.regression import (
    Baseline,
    block_drift_variance,
    check_regressions,
    gate,
    load_baseline,
    t_quantile,
)
from mobilize.results.store import get_run, open_store, save_run
from tests.device_bench.conftest import make_record
from tests.device_bench.conv_models import conv_model, gate_bench_args

RNG_SEED = 16


def drifting_runs(rng: np.random.Generator, level_us: float, count: int, drift: float = 0.08,
                  wander: float = 0.06, samples: int = 100) -> list[list[float]]:
    """Runs as the emulated device gave them on this shared 2-core machine (1 thread): the
    level moves by `drift` (sd of the log median) from run to run, and inside a run by
    `wander` from one tenth of the run to the next, under 5 % noise with a slow tail."""
    runs = []
    for _ in range(count):
        level = level_us * math.exp(rng.normal(0.0, drift))
        tenths = np.repeat(np.exp(rng.normal(0.0, wander, 10)), -(-samples // 10))[:samples]
        noise = rng.lognormal(0.0, 0.05, samples) + rng.exponential(0.05, samples)
        runs.append(list(level * tenths * noise))
    return runs


def test_identical_files_do_not_fail_under_between_run_drift() -> None:
    rng = np.random.default_rng(RNG_SEED)
    old_failures = new_failures = 0
    trials = 400
    for trial in range(trials):
        baseline, candidate = drifting_runs(rng, 500.0, 2)
        if trial < 100:  # the old gate's bootstrap is slow; 100 trials show it plainly
            old_failures += find_regression(baseline, candidate, 0.10) is not None
        new_failures += gate([baseline], [candidate]).failed(0.10)
    # The within-run bootstrap alone calls drift a regression again and again (the issue's
    # +33 % failures); the gate that models drift stays under its nominal 2.5 %, with one
    # run on each side and nothing stored (the hardest case).
    assert old_failures > 15
    assert new_failures <= 0.025 * trials


def test_a_slower_file_is_caught_once_repeats_measure_the_spread() -> None:
    rng = np.random.default_rng(RNG_SEED)
    caught, trials = 0, 100
    for _ in range(trials):
        pool = drifting_runs(rng, 500.0, 10)
        slower = drifting_runs(rng, 625.0, 5)  # 25 % slower, `--repeat 5`
        result = gate(pool, slower, [[math.log(np.median(run)) for run in pool]])
        caught += result.failed(0.10)
        assert result.repeats_df == 9 + 4
    assert caught >= 0.9 * trials  # power, not certainty: 97 % with 10 and 5 runs


def test_one_run_each_can_only_fail_on_a_large_slowdown() -> None:
    rng = np.random.default_rng(RNG_SEED)
    base, = drifting_runs(rng, 500.0, 1, drift=0.0, wander=0.0)
    result = gate([base], [[value * 1.5 for value in base]])
    # +50 % is far over the margin, but one run each cannot tell it from the drift assumed
    # until repeats measure it (10 %): the issue's +33..38 % of an identical file passes
    assert result.repeats_df == 0 and not result.failed(0.10) and result.low < 1.0
    assert "no repeated runs stored yet" in result.describe()
    assert gate([base], [[value * 2.5 for value in base]]).failed(0.10)


def test_the_issues_three_gates_of_the_baselines_own_file_pass(tmp_path: Path) -> None:
    """Issue 16: run ID, then three gates of its very file at +33, +34 and +38 % (the device
    drifted), each exited 5. Each gate's run is stored, as bench does."""
    rng = np.random.default_rng(RNG_SEED)
    db = tmp_path / "r.db"
    _store(db, [make_record("id", drifting_runs(rng, 500.0, 1, drift=0.0)[0])])
    for index, slower in enumerate((1.33, 1.34, 1.38)):
        run, = drifting_runs(rng, 500.0 * slower, 1, drift=0.0)
        record = make_record(f"gate-{index}", run)
        lines: list[str] = []
        check_regressions(load_baseline(db, "1"), [record], 0.10, lines.append)
        assert "no regression" in lines[0]
        _store(db, [record])


def test_a_constant_baseline_far_below_still_fails() -> None:
    # The old test's shape: a 1 µs baseline against real samples.
    rng = np.random.default_rng(RNG_SEED)
    candidate, = drifting_runs(rng, 500.0, 1)
    assert gate([[1.0] * 20], [candidate]).failed(0.10)
    assert not gate([[1e9] * 20], [candidate]).failed(0.10)


def test_block_drift_sees_a_level_that_moves_inside_a_run() -> None:
    steady = [100.0] * 50
    moving = [100.0] * 25 + [130.0] * 25
    assert block_drift_variance(steady) == 0.0
    assert block_drift_variance(moving) > 0.01
    assert block_drift_variance([100.0, 101.0, 99.0]) is None  # too short to split


def test_student_t_quantile() -> None:
    stats = pytest.importorskip("scipy.stats")
    for probability in (0.975, 0.995):
        for df in (4, 5, 8, 12, 30, 100):
            assert t_quantile(probability, df) == pytest.approx(stats.t.ppf(probability, df),
                                                                rel=3e-3)


def _store(db: Path, records: list[dict]) -> None:
    with open_store(db) as connection:
        for record in records:
            save_run(connection, record)


def test_check_regressions_pools_stored_repeats_of_the_baseline_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED)
    db = tmp_path / "r.db"
    base_runs = drifting_runs(rng, 500.0, 6)
    _store(db, [make_record(f"base-{i}", run) for i, run in enumerate(base_runs)])
    baseline = load_baseline(db, "1")
    assert len(baseline.pool) == 6 and baseline.repeat_groups()
    same = [make_record("again", drifting_runs(rng, 500.0, 1)[0])]
    lines: list[str] = []
    check_regressions(baseline, same, 0.10, lines.append)
    assert "no regression against run 1" in lines[0] and "6 baseline run(s)" in lines[0]
    slower = [make_record(f"slow-{i}", run) for i, run in enumerate(drifting_runs(rng, 700.0, 3))]
    for record in slower:
        record["model_sha256"] = "cd" * 32
    with pytest.raises(RegressionError) as raised:
        check_regressions(baseline, slower, 0.10, lines.append)
    assert raised.value.exit_code == EXIT_REGRESSION
    assert "run-to-run spread" in raised.value.message


def test_interleaved_runs_of_the_baseline_file_are_the_fresh_baseline(tmp_path: Path) -> None:
    """`bench base.tflite new.tflite --baseline 1 --repeat 3`: the device got 80 % slower
    since run 1 for everything; against the fresh runs nothing regressed."""
    rng = np.random.default_rng(RNG_SEED)
    db = tmp_path / "r.db"
    _store(db, [make_record("old", drifting_runs(rng, 500.0, 1, drift=0.01)[0])])
    baseline = load_baseline(db, "1")
    records = []
    for i in range(3):
        records.append(make_record(f"b{i}", drifting_runs(rng, 900.0, 1, drift=0.01)[0]))
        new = make_record(f"n{i}", drifting_runs(rng, 900.0, 1, drift=0.01)[0])
        new["model_sha256"], new["model_name"] = "cd" * 32, "new.tflite"
        records.append(new)
    lines: list[str] = []
    check_regressions(baseline, records, 0.10, lines.append)
    assert "new.tflite" in lines[0] and "interleaved" in lines[0]
    assert "m.tflite on" not in lines[0]  # the baseline's own file is the yardstick here
    new_only = [r for r in records if r["model_name"] == "new.tflite"]
    with pytest.raises(RegressionError):  # against the stored run alone: a step of +80 %
        check_regressions(Baseline(_stored_run(db, "1")), new_only, 0.10, lines.append)


def _stored_run(db: Path, key: str):
    with open_store(db, create=False) as connection:
        return get_run(connection, key)


# ------------------------------------------------------------------ on the emulated device


@pytest.mark.slow
@pytest.mark.emulator
def test_gate_on_the_emulated_device(tmp_path: Path, capsys) -> None:
    """The gate end to end on the emulated device: a baseline of 3 runs, two gates of the
    very same file pass, a file with four times the compute fails with exit 5. The margins
    are wide on purpose (25 %, 4x): this shared 2-core machine swings run medians by 30 %
    when another job starts. How often the gate fails an identical file at 10 %, and
    whether it catches +25 % compute, is benchmarks/regression_gate.py."""
    base, slower = tmp_path / "base.tflite", tmp_path / "slower.tflite"
    conv_model(base, 3)
    conv_model(slower, 12)
    with running_emulator(tmp_path / "device", accept_new_keys=True) as emu:
        def bench(model: Path, *extra: str) -> tuple[int, str]:
            code = main(gate_bench_args(model, emu.serial, tmp_path, 50, *extra))
            return code, capsys.readouterr().err

        assert bench(base, "--repeat", "3")[0] == 0
        gates = [bench(base, "--baseline", "1", "--max-regression", "25%") for _ in range(2)]
        code, err = bench(slower, "--baseline", "1", "--max-regression", "25%",
                          "--repeat", "3")
    for gate_code, text in gates:
        assert gate_code == 0, text
        assert "no regression against run 1 (allowed 25%)" in text
    assert code == EXIT_REGRESSION, err
    assert "slower than baseline run 1" in err and "slower.tflite" in err
