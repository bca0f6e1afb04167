"""Bad input to `mobilize bench` / `results` is refused before any device is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilize.cli import main


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--runner", "benchmark-model"], "needs --binary PATH"),
        (["--runner", "benchmark-model", "--binary", "/nonexistent/benchmark_model"],
         "is not a file"),
        (["--repeat", "0"], "--repeat must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--runs", "0"], "--runs must be at least 1"),
        (["--retries", "-1"], "--retries must be 0 or more"),
        (["--max-regression", "lots"], "is not a percentage"),
    ],
)
def test_bench_usage_errors(extra: list[str], expected: str, tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    # The serial points at nothing: a usage error must come before any connection attempt.
    code = main(["bench", str(model), "--serial", "127.0.0.1:9", "--db", str(tmp_path / "r.db"),
                 *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err


def test_results_of_an_unknown_run(tmp_path: Path, capsys) -> None:
    code = main(["results", "--db", str(tmp_path / "r.db"), "show", "42"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no stored run '42'" in err and "mobilize results list" in err


def test_compare_needs_samples(tmp_path: Path, record_factory, capsys) -> None:
    from mobilize.results.store import open_store, save_run

    with open_store(tmp_path / "r.db") as connection:
        save_run(connection, record_factory("a", [1.0, 2.0]))
        failed = record_factory("b", [], status="model_load_failed")
        failed["result"]["latency"] = None
        save_run(connection, failed)
    code = main(["results", "--db", str(tmp_path / "r.db"), "compare", "1", "2"])
    assert code == 2
    assert "need latency samples" in capsys.readouterr().err
