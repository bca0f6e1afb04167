"""`mobilize devices / bench / results` end to end against the emulated device.

The real adb-shell TCP transport talks the real ADB protocol to the emulator on loopback;
its fake app runs the pushed .tflite with the real TFLite interpreter. Each bad-input and
fault case of the issue is one test here.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilize.bench import app_contract
from mobilize.cli import main
from mobilize.device.errors import EXIT_DEVICE_ERROR, EXIT_REGRESSION, EXIT_TIMEOUT
from mobilize.emulator.testing import running_emulator
from mobilize.results.store import open_store, save_run

pytestmark = pytest.mark.emulator

HOSTILE_NAME = "my model 'v2\"; touch pwned; $(touch pwned2) `id`.tflite"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[object]:
    with running_emulator(tmp_path / "device", accept_new_keys=True) as handle:
        yield handle


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "adbkey"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def bench_args(model: Path, emu, key: Path, db: Path, *extra: str) -> list[str]:
    return ["bench", str(model), "--serial", emu.serial, "--adb-key", str(key), "--db", str(db),
            "--runs", "5", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
            "--auth-timeout", "5", "--timeout", "60", *extra]


def stored_runs(db: Path) -> list[tuple[str, str, int]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT r.status, r.model_name, (SELECT COUNT(*) FROM samples s WHERE s.run = r.id) "
            "FROM runs r ORDER BY r.id").fetchall()


def work_dir_files(emu) -> list[str]:
    folder = Path(emu.root) / app_contract.REMOTE_WORK_DIR.lstrip("/")
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------ the path that works


def test_bench_runs_stores_and_cleans_up(emu, key, db, tmp_path, tiny_tflite, capsys) -> None:
    out_json = tmp_path / "runs.json"
    code, out, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--json",
                                                 str(out_json)))
    assert code == 0, err
    assert "tiny.tflite" in out and "ok" in out
    assert stored_runs(db) == [("ok", "tiny.tflite", 5)]
    runs = json.loads(out_json.read_text())["runs"]
    assert len(runs) == 1
    result = runs[0]["result"]
    assert result["status"] == "ok" and len(result["latency"]["samples"]) == 5
    assert runs[0]["model_sha256"] == result["model"]["sha256"] or result["model"]["sha256"] is None
    assert result["memory"]["pss"] is not None and result["memory"]["peak_rss"] > 0
    assert runs[0]["harness"]["overhead_s"] >= 0
    assert work_dir_files(emu) == []  # the pushed model is gone
    assert key.exists() and (key.parent / "adbkey.pub").exists()


def test_devices_lists_the_emulated_phone(emu, key, capsys) -> None:
    code, out, err = run_cli(capsys, "devices", "--serial", emu.serial, "--adb-key", str(key))
    assert code == 0, err
    assert "Mobilize Emulated Phone" in out
    assert "arm64-v8a" in out
    assert f"{app_contract.APP_VERSION_NAME} ({app_contract.APP_VERSION_CODE})" in out


def test_gpu_request_on_a_device_without_one_is_not_labelled_gpu(emu, key, db, tiny_tflite,
                                                                  tmp_path, capsys) -> None:
    out_json = tmp_path / "gpu.json"
    code, out, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--delegate", "gpu",
                                                 "--json", str(out_json)))
    assert code == 0, err
    delegate = json.loads(out_json.read_text())["runs"][0]["result"]["delegate"]
    assert delegate["requested"] == "gpu" and delegate["applied"] is False
    assert "not applied" in out


def test_names_with_spaces_quotes_and_semicolons(emu, key, db, tmp_path, tiny_tflite,
                                                 capsys) -> None:
    hostile = tmp_path / HOSTILE_NAME
    shutil.copy(tiny_tflite, hostile)
    code, out, err = run_cli(capsys, *bench_args(hostile, emu, key, db))
    assert code == 0, err
    assert stored_runs(db) == [("ok", HOSTILE_NAME, 5)]
    created = {p.name for p in Path(emu.root).rglob("*")}
    assert not {"pwned", "pwned2"} & created  # nothing ran that the name smuggled in
    assert work_dir_files(emu) == []


def test_repeat_interleaves_models(emu, key, db, tmp_path, tiny_tflite, capsys) -> None:
    other = tmp_path / "other.tflite"
    shutil.copy(tiny_tflite, other)
    args = bench_args(tiny_tflite, emu, key, db, "--repeat", "2")
    args.insert(2, str(other))
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert [name for _, name, _ in stored_runs(db)] == [
        "tiny.tflite", "other.tflite", "tiny.tflite", "other.tflite"]


def test_thermal_rise_during_a_run_is_warned_about(emu, key, db, tiny_tflite, capsys) -> None:
    from mobilize.emulator.faults import ThermalStatus

    emu.faults.thermal_during_run = ThermalStatus.MODERATE
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db,
                                               "--cooldown-timeout", "0"))
    assert code == 0, err
    assert "thermal status rose" in err


def test_results_list_show_compare(emu, key, db, tiny_tflite, capsys) -> None:
    for _ in range(2):
        assert run_cli(capsys, *bench_args(tiny_tflite, emu, key, db))[0] == 0
    code, out, _ = run_cli(capsys, "results", "--db", str(db), "list")
    assert code == 0 and out.count("tiny.tflite") == 2
    code, out, _ = run_cli(capsys, "results", "--db", str(db), "show", "1")
    assert code == 0 and '"num_runs": 5' in out
    code, out, _ = run_cli(capsys, "results", "--db", str(db), "compare", "1", "2")
    assert code == 0 and "median" in out and "95% CI" in out


def _store_baseline(db: Path, record_factory, latency_us: float) -> None:
    with open_store(db) as connection:
        save_run(connection, record_factory("baseline-run", [latency_us] * 20))


def test_baseline_regression_fails_the_command(emu, key, db, tiny_tflite, record_factory,
                                               capsys) -> None:
    _store_baseline(db, record_factory, 1.0)  # an impossibly fast baseline: 1 µs
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--baseline", "1",
                                               "--max-regression", "10%"))
    assert code == EXIT_REGRESSION
    assert "slower than baseline run 1" in err


def test_baseline_without_regression_passes(emu, key, db, tiny_tflite, record_factory,
                                            capsys) -> None:
    _store_baseline(db, record_factory, 1e9)  # a very slow baseline: 1000 s
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--baseline", "1"))
    assert code == 0, err
    assert "no regression" in err


# ------------------------------------------------------------------ bad input and faults


def test_no_device(tiny_tflite, key, db, monkeypatch, capsys) -> None:
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    code, _, err = run_cli(capsys, "bench", str(tiny_tflite), "--adb-key", str(key), "--db",
                           str(db), "--adb-server-port", str(free_port()))
    assert code == EXIT_DEVICE_ERROR
    assert "no Android device is attached" in err
    assert "what to do:" in err


def test_nothing_listens_at_the_serial(tiny_tflite, key, db, capsys) -> None:
    code, _, err = run_cli(capsys, "bench", str(tiny_tflite), "--serial",
                           f"127.0.0.1:{free_port()}", "--adb-key", str(key), "--db", str(db))
    assert code == EXIT_DEVICE_ERROR
    assert "nothing answers at 127.0.0.1:" in err and "Connection refused" in err


def test_unauthorized_device(tmp_path, key, db, tiny_tflite, capsys) -> None:
    with running_emulator(tmp_path / "locked", accept_new_keys=False) as emu:
        code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db,
                                                   "--auth-timeout", "2"))
    assert code == EXIT_DEVICE_ERROR
    assert "did not authorize" in err
    assert "Allow" in err
    assert stored_runs(db) == []


def test_device_lost_mid_push_without_retries(emu, key, db, tiny_tflite, capsys) -> None:
    emu.faults.drop_after_bytes = 256
    emu.faults.drops_left = 1
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db))
    assert code == EXIT_DEVICE_ERROR
    assert "lost the connection" in err and "--retries" in err
    assert "Error:" not in err  # words, not the Python exception's class name
    assert "Nothing was stored for this device: no run finished" in err
    assert stored_runs(db) == []  # nothing recorded as a success


def test_device_lost_mid_push_recovers_with_retries(emu, key, db, tiny_tflite, capsys) -> None:
    emu.faults.drop_after_bytes = 256
    emu.faults.drops_left = 1
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--retries", "2"))
    assert code == 0, err
    assert "retrying the push (1/2)" in err
    assert stored_runs(db) == [("ok", "tiny.tflite", 5)]


def test_app_crash_shows_the_logcat_excerpt(emu, key, db, tiny_tflite, capsys) -> None:
    emu.faults.app_crash = True
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db))
    assert code == EXIT_DEVICE_ERROR
    assert "crashed" in err and "FATAL EXCEPTION" in err
    assert "Nothing was stored for this device: no run finished" in err
    assert stored_runs(db) == []
    assert work_dir_files(emu) == []


def test_result_timeout(emu, key, db, tiny_tflite, capsys) -> None:
    emu.faults.stall_seconds = 3.0
    emu.faults.stall_match = "run-as"
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--timeout", "1"))
    assert code == EXIT_TIMEOUT
    assert "no result from the benchmark app" in err
    assert stored_runs(db) == []


def test_wrong_abi(tmp_path, key, db, tiny_tflite, capsys) -> None:
    profile = {"properties": {"ro.product.cpu.abi": "mips", "ro.product.cpu.abilist": "mips"}}
    with running_emulator(tmp_path / "mips", profile=profile) as emu:
        code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db))
    assert code == EXIT_DEVICE_ERROR
    assert "ABI (mips)" in err and "arm64-v8a" in err


def test_model_file_missing(emu, key, db, tmp_path, capsys) -> None:
    code, _, err = run_cli(capsys, *bench_args(tmp_path / "absent.tflite", emu, key, db))
    assert code == 2
    assert "model not found" in err


def test_model_that_fails_to_load_on_the_device(emu, key, db, tiny_tflite, capsys) -> None:
    # A file that is not a TFLite model is refused on the host (tests/device_bench/
    # test_bad_input.py); a valid one the phone's runtime cannot load fails on the device.
    emu.faults.model_load_fails = True
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db))
    assert code == EXIT_DEVICE_ERROR
    assert "model_load_failed" in err
    # The failure is stored as what it is, never as a success.
    assert stored_runs(db) == [("model_load_failed", tiny_tflite.name, 0)]


def test_disk_full(emu, key, db, tiny_tflite, capsys) -> None:
    emu.faults.disk_full = True
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db))
    assert code == EXIT_DEVICE_ERROR
    assert "free space" in err


def test_cooldown_gate_gives_up_on_a_hot_device(tmp_path, key, db, tiny_tflite, capsys) -> None:
    with running_emulator(tmp_path / "hot", profile={"thermal_status": 3}) as emu:
        code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db,
                                                   "--cooldown-timeout", "1"))
    assert code == EXIT_TIMEOUT
    assert "did not cool down" in err and "severe" in err


def test_missing_app_without_apk_says_how_to_build_it(tmp_path, key, db, tiny_tflite,
                                                       capsys) -> None:
    with running_emulator(tmp_path / "bare", profile={"app": {"preinstalled": False}}) as emu:
        code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db))
    assert code == EXIT_DEVICE_ERROR
    assert "not installed" in err and "./gradlew assembleRelease" in err


def test_two_benchmarks_racing_for_one_device(emu, key, db, tmp_path, tiny_tflite,
                                              capsys) -> None:
    outputs = [tmp_path / "a.json", tmp_path / "b.json"]
    codes: list[int] = []

    def one(out: Path) -> None:
        codes.append(main(bench_args(tiny_tflite, emu, key, db, "--runs", "20", "--json",
                                     str(out))))

    threads = [threading.Thread(target=one, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    capsys.readouterr()
    assert codes == [0, 0]
    windows = sorted(
        (run["result"]["started_at"], run["result"]["finished_at"])
        for out in outputs for run in json.loads(out.read_text())["runs"]
    )
    assert windows[0][1] <= windows[1][0]  # the second ran only after the first finished
    assert [status for status, _, _ in stored_runs(db)] == ["ok", "ok"]


def test_several_devices_in_parallel(tmp_path, key, db, tiny_tflite, capsys) -> None:
    with running_emulator(tmp_path / "one") as first, running_emulator(tmp_path / "two") as second:
        args = bench_args(tiny_tflite, first, key, db, "--serial", second.serial)
        code, out, err = run_cli(capsys, *args)
        serials = {first.serial, second.serial}
    assert code == 0, err
    with sqlite3.connect(db) as connection:
        stored = {row[0] for row in connection.execute("SELECT serial FROM runs")}
    assert stored == serials


def test_outdated_app_is_updated_from_the_given_apk(tmp_path, key, db, tiny_tflite,
                                                    capsys) -> None:
    from mobilize.emulator.packages import make_stand_in_apk

    apk = make_stand_in_apk(tmp_path / "app-release.apk", app_contract.PACKAGE,
                            app_contract.APP_VERSION_CODE, app_contract.APP_VERSION_NAME)
    old_app = {"app": {"version_code": 0, "version_name": "0.0.9"}}
    with running_emulator(tmp_path / "old", profile=old_app) as emu:
        code, out, _ = run_cli(capsys, "devices", "--serial", emu.serial, "--adb-key", str(key))
        assert code == 0 and "0.0.9 (0)" in out and "outdated" in out
        code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--apk", str(apk)))
        assert code == 0, err
        assert "installing app-release.apk (the app is at version 0.0.9 (0))" in err
        code, out, _ = run_cli(capsys, "devices", "--serial", emu.serial, "--adb-key", str(key))
    assert f"{app_contract.APP_VERSION_NAME} ({app_contract.APP_VERSION_CODE})" in out
    assert "outdated" not in out
    assert stored_runs(db) == [("ok", "tiny.tflite", 5)]


@pytest.mark.slow
def test_two_bench_processes_racing_for_one_device(emu, key, db, tmp_path, tiny_tflite) -> None:
    """Both processes find the device taken (the test holds its lock, so the race does not
    hang on how fast two interpreters start on a busy machine), both say they wait; once it
    is free one benches and the other waits again for it: their runs never overlap."""
    import subprocess
    import sys

    from mobilize.device.lock import device_lock

    outputs = [tmp_path / "p1.json", tmp_path / "p2.json"]
    with device_lock(emu.serial, 5.0):
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "mobilize.cli",
                 *bench_args(tiny_tflite, emu, key, db, "--runs", "20", "--json", str(out))],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for out in outputs
        ]
        waiting = [threading.Event() for _ in processes]
        errors: list[list[str]] = [[] for _ in processes]

        def read_stderr(index: int) -> None:
            for line in processes[index].stderr:
                errors[index].append(line)
                if "waiting for another benchmark" in line:
                    waiting[index].set()

        readers = [threading.Thread(target=read_stderr, args=(i,)) for i in range(2)]
        for reader in readers:
            reader.start()
        both_waited = all(event.wait(180) for event in waiting)
    stdouts = [process.communicate(timeout=300)[0] for process in processes]
    for reader in readers:
        reader.join(60)
    assert both_waited, errors
    assert [process.returncode for process in processes] == [0, 0], (stdouts, errors)
    windows = sorted(
        (run["result"]["started_at"], run["result"]["finished_at"])
        for out in outputs for run in json.loads(out.read_text())["runs"]
    )
    assert windows[0][1] <= windows[1][0]


def test_export_folder_benches_each_target_or_the_chosen_one(emu, key, db, tmp_path,
                                                             tiny_tflite, capsys) -> None:
    from mobilize.device.ops import local_sha256

    folder = tmp_path / "fast_style"
    folder.mkdir()
    for name in ("fp32.tflite", "int8.tflite"):
        shutil.copy(tiny_tflite, folder / name)
    digest = local_sha256(tiny_tflite)
    (folder / "metadata.json").write_text(json.dumps({"artifacts": [
        {"target": "tflite-fp32", "file": "fp32.tflite", "sha256": digest},
        {"target": "tflite-int8", "file": "int8.tflite", "sha256": digest},
    ]}))
    code, _, err = run_cli(capsys, *bench_args(folder, emu, key, db))
    assert code == 0, err
    code, _, err = run_cli(capsys, *bench_args(folder, emu, key, db, "--target", "tflite-int8"))
    assert code == 0, err
    assert [name for _, name, _ in stored_runs(db)] == [
        "fast_style:tflite-fp32", "fast_style:tflite-int8", "fast_style:tflite-int8"]
    with sqlite3.connect(db) as connection:
        targets = [row[0] for row in connection.execute("SELECT target FROM runs ORDER BY id")]
    assert targets == ["tflite-fp32", "tflite-int8", "tflite-int8"]


def test_devices_on_an_unauthorized_device_says_what_to_do(tmp_path, key, capsys) -> None:
    with running_emulator(tmp_path / "locked", accept_new_keys=False) as emu:
        code, _, err = run_cli(capsys, "devices", "--serial", emu.serial, "--adb-key", str(key),
                               "--auth-timeout", "2")
    assert code == EXIT_DEVICE_ERROR
    assert "did not authorize" in err and "Allow" in err


def test_devices_with_nothing_attached(key, monkeypatch, capsys) -> None:
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    code, _, err = run_cli(capsys, "devices", "--adb-key", str(key), "--adb-server-port",
                           str(free_port()))
    assert code == EXIT_DEVICE_ERROR
    assert "no Android device is attached" in err


def test_benchmark_model_runner_is_wired_in(emu, key, db, tmp_path, tiny_tflite, capsys) -> None:
    # The emulated device cannot execute this binary, so this checks the wiring: the binary
    # is pushed and made executable, the shell's refusal is told as the binary not running
    # (not as the model failing), nothing is stored, and the model is removed.
    from mobilize.bench.benchmark_model import REMOTE_BINARY

    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF not really")
    code, _, err = run_cli(capsys, *bench_args(tiny_tflite, emu, key, db, "--runner",
                                               "benchmark-model", "--binary", str(binary)))
    assert code == EXIT_DEVICE_ERROR
    assert "the benchmark_model binary could not run on this device" in err
    assert "loaded but did not run" not in err and "--binary PATH" in err
    assert (Path(emu.root) / REMOTE_BINARY.lstrip("/")).read_bytes() == binary.read_bytes()
    assert stored_runs(db) == []
    assert work_dir_files(emu) == []
