"""`--json PATH|-`: the figures as JSON, to a file or alone on stdout (`| jq` works)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mobilize.cli import main
from mobilize.results.store import open_store, save_run


@pytest.fixture
def db(tmp_path: Path, record_factory: Callable[..., dict[str, Any]]) -> Path:
    path = tmp_path / "results.db"
    with open_store(path) as connection:
        save_run(connection, record_factory("20261123T070000-aaaaaaaa", [1000.0, 1100.0, 1050.0]))
        save_run(connection, record_factory("20261123T070001-bbbbbbbb", [2000.0, 2100.0, 2050.0]))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_results_list_json_to_stdout_carries_only_json(db: Path, capsys) -> None:
    code, out, err = run(capsys, "results", "--db", str(db), "list", "--json", "-")
    assert code == 0, err
    runs = json.loads(out)["runs"]  # nothing but the JSON on stdout
    assert [r["run_id"] for r in runs] == ["20261123T070001-bbbbbbbb", "20261123T070000-aaaaaaaa"]
    assert runs[0]["p50_us"] == 2050.0
    assert "Stored runs" in err and "20261123T070001-bbbbbbbb" in err  # the table moved there


def test_results_show_json_has_the_run_and_its_samples(db: Path, capsys) -> None:
    code, out, err = run(capsys, "results", "--db", str(db), "show", "1", "--json", "-")
    assert code == 0, err
    shown = json.loads(out)["run"]
    assert shown["id"] == 1 and shown["samples_us"] == [1000.0, 1100.0, 1050.0]
    assert shown["result"]["config"]["num_runs"] == 5 and "harness" in shown


def test_results_show_json_to_a_file_keeps_the_terminal_view(db: Path, tmp_path: Path,
                                                              capsys) -> None:
    target = tmp_path / "run.json"
    code, out, _ = run(capsys, "results", "--db", str(db), "show", "2", "--json", str(target))
    assert code == 0
    assert json.loads(target.read_text())["run"]["run_id"] == "20261123T070001-bbbbbbbb"
    assert "Run 2" in out and '"num_runs": 5' in out


def test_results_compare_json(db: Path, capsys) -> None:
    code, out, err = run(capsys, "results", "--db", str(db), "compare", "1", "2", "--json", "-")
    assert code == 0, err
    payload = json.loads(out)
    median = next(row for row in payload["comparisons"] if row["metric"] == "median")
    assert median["ratio"] == pytest.approx(2050.0 / 1050.0)
    low, high = median["ci95"]
    assert low <= median["ratio"] <= high
    assert payload["baseline"]["id"] == 1 and payload["candidate"]["id"] == 2
    assert "95% CI" in err


def test_json_into_a_folder_is_a_usage_error(db: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "results", "--db", str(db), "list", "--json", str(tmp_path))
    assert code == 2
    assert "is a folder" in err


def test_dev_stdout_is_written_to_and_carries_only_json(db: Path) -> None:
    # A real process: /dev/stdout is its pipe. Renaming a temp file over it would fail or
    # replace the device; the JSON must come down the pipe, with the table on stderr.
    completed = subprocess.run(
        [sys.executable, "-m", "mobilize", "results", "--db", str(db), "show", "1",
         "--json", "/dev/stdout"],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["run"]["id"] == 1
    assert "Run 1" in completed.stderr
    assert Path("/dev/stdout").is_symlink() or Path("/dev/stdout").exists()


def test_debug_after_the_subcommand_is_accepted(db: Path, capsys) -> None:
    code, _, err = run(capsys, "results", "--db", str(db), "show", "42", "--debug")
    assert code == 2
    assert "no stored run '42'" in err


# ------------------------------------------------------------------ on the emulated device


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Any]:
    from mobilize.emulator.testing import running_emulator

    with running_emulator(tmp_path / "device", accept_new_keys=True) as handle:
        yield handle


def bench_args(emu: Any, tmp_path: Path, *models: Path) -> list[str]:
    return ["bench", *map(str, models), "--serial", emu.serial,
            "--adb-key", str(tmp_path / "keys" / "adbkey"), "--db", str(tmp_path / "r.db"),
            "--runs", "5", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
            "--auth-timeout", "5", "--timeout", "60"]


@pytest.mark.emulator
def test_bench_json_to_stdout_with_an_ab_comparison(emu, tmp_path: Path, tiny_tflite: Path,
                                                    capsys) -> None:
    other = tmp_path / "other.tflite"
    other.write_bytes(tiny_tflite.read_bytes())
    code, out, err = run(capsys, *bench_args(emu, tmp_path, tiny_tflite, other),
                         "--repeat", "2", "--json", "-")
    assert code == 0, err
    payload = json.loads(out)
    assert [r["model_name"] for r in payload["runs"]] == [
        "tiny.tflite", "other.tflite", "tiny.tflite", "other.tflite"]
    (comparison,) = payload["comparisons"]
    assert (comparison["baseline"], comparison["candidate"]) == ("tiny.tflite", "other.tflite")
    assert comparison["ci95"][0] <= comparison["ratio"] <= comparison["ci95"][1]
    assert "Benchmark results on" in err and "other.tflite vs tiny.tflite: median" in err


@pytest.mark.emulator
def test_a_gpu_request_that_ran_on_the_cpu_warns_and_exits_0(emu, tmp_path: Path,
                                                             tiny_tflite: Path, capsys) -> None:
    code, out, err = run(capsys, *bench_args(emu, tmp_path, tiny_tflite), "--delegate", "gpu")
    assert code == 0, err
    assert "gpu → cpu not applied" in out
    assert "warning:" in err and "asked for gpu but ran on the CPU" in err


@pytest.mark.emulator
def test_devices_json(emu, tmp_path: Path, capsys) -> None:
    code, out, err = run(capsys, "devices", "--serial", emu.serial,
                         "--adb-key", str(tmp_path / "keys" / "adbkey"), "--json", "-")
    assert code == 0, err
    (device,) = json.loads(out)["devices"]
    assert device["serial"] == emu.serial and device["model"] == "Mobilize Emulated Phone"
    assert device["app_outdated"] is False and device["error"] is None
    assert emu.serial in err  # the table, on stderr
