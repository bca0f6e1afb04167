"""Runs that end badly leave the device clean, and `--timeout` bounds the whole run.

Against the emulated device: a timed-out run, a killed harness, Ctrl-C, a crash of an
earlier run's process, a device that stalls every reply.
"""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mobilize.bench import app_contract
from mobilize.cli import main
from mobilize.device.errors import EXIT_TIMEOUT
from mobilize.emulator.logcat import Priority
from mobilize.emulator.testing import running_emulator
from mobilize.errors import ExitCode

pytestmark = pytest.mark.emulator
PACKAGE = app_contract.PACKAGE
# Long enough (the tiny model runs in ~0.05 ms) for the harness's crash checks (every 1 s).
LONG_RUN = "15000"
ENDLESS_RUN = "100000000"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[object]:
    with running_emulator(tmp_path / "device", accept_new_keys=True) as handle:
        yield handle


def bench_args(model: Path, emu, tmp_path: Path, *extra: str) -> list[str]:
    return ["bench", str(model), "--serial", emu.serial,
            "--adb-key", str(tmp_path / "keys" / "adbkey"), "--db", str(tmp_path / "r.db"),
            "--runs", "5", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
            "--auth-timeout", "5", "--timeout", "60", *extra]


def work_dir(emu) -> list[str]:
    folder = emu.host_path(app_contract.REMOTE_WORK_DIR)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def app_files(emu) -> list[str]:
    folder = emu.host_path(app_contract.APP_FILES_DIR)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def app_running(emu) -> bool:
    """The emulated phone's own view: a process for the app, or a live worker measuring."""
    return any(
        process.package == PACKAGE
        or (process.worker is not None and process.worker.poll() is None)
        for process in emu.device.apps.running()
    )


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def measuring(emu) -> bool:
    process = emu.device.apps.process(PACKAGE)
    return process is not None and process.worker is not None and process.worker.poll() is None


def test_timed_out_run_stops_the_app_and_removes_its_files(emu, tmp_path, tiny_tflite,
                                                           capsys) -> None:
    code = main(bench_args(tiny_tflite, emu, tmp_path, "--runs", ENDLESS_RUN, "--timeout", "3"))
    err = capsys.readouterr().err
    assert code == EXIT_TIMEOUT, err
    assert "no result from the benchmark app" in err
    assert not app_running(emu)
    assert "Force stopping dev.mobilize.bench" in emu.logcat.text()
    assert work_dir(emu) == []
    assert app_files(emu) == []
    # The next bench, with a run long enough for crash checks, is not failed by the first.
    code = main(bench_args(tiny_tflite, emu, tmp_path, "--runs", LONG_RUN))
    assert code == 0, capsys.readouterr().err
    assert not app_running(emu) and work_dir(emu) == [] and app_files(emu) == []


def test_interrupted_run_cleans_up(emu, tmp_path, tiny_tflite, capsys) -> None:
    def interrupt_when_measuring() -> None:
        wait_until(lambda: measuring(emu))
        _thread.interrupt_main()  # Ctrl-C, as the main thread sees it

    helper = threading.Thread(target=interrupt_when_measuring, daemon=True)
    helper.start()
    code = main(bench_args(tiny_tflite, emu, tmp_path, "--runs", ENDLESS_RUN))
    helper.join(5)
    assert code == ExitCode.INTERRUPTED, capsys.readouterr().err
    assert not app_running(emu)
    assert work_dir(emu) == [] and app_files(emu) == []


def test_after_a_killed_harness_the_next_bench_cleans_up(emu, tmp_path, tiny_tflite,
                                                         capsys) -> None:
    killed = subprocess.Popen(
        [sys.executable, "-m", "mobilize.cli",
         *bench_args(tiny_tflite, emu, tmp_path, "--runs", ENDLESS_RUN)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: measuring(emu), timeout=120)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(30)
    # What kill -9 leaves: the pushed model, the app still measuring; and, as if the app
    # had finished in the meantime, its result file.
    [model] = work_dir(emu)
    run_id = model.removesuffix("-" + tiny_tflite.name)
    assert measuring(emu)
    result = emu.host_path(f"{app_contract.APP_FILES_DIR}/{app_contract.RESULTS_SUBDIR}")
    result.mkdir(parents=True, exist_ok=True)
    (result / f"{run_id}.json").write_text("{}")

    code = main(bench_args(tiny_tflite, emu, tmp_path, "--runs", LONG_RUN))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "removing what earlier runs left on the device" in err
    assert not app_running(emu)
    assert work_dir(emu) == [] and app_files(emu) == []


def test_crash_of_an_earlier_process_does_not_fail_this_run(emu, tmp_path, tiny_tflite,
                                                            capsys) -> None:
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(
        main(bench_args(tiny_tflite, emu, tmp_path, "--runs", LONG_RUN))))
    runner.start()
    wait_until(lambda: measuring(emu))
    old_pid = emu.device.apps.pid_of(PACKAGE) - 7  # an earlier process of the app
    for line in ("FATAL EXCEPTION: main", f"Process: {PACKAGE}, PID: {old_pid}",
                 "java.lang.OutOfMemoryError: an earlier run's death, logged late"):
        emu.logcat.log(Priority.ERROR, "AndroidRuntime", line, pid=old_pid)
    runner.join(120)
    err = capsys.readouterr().err
    assert codes == [0], err
    assert "crashed" not in err


def test_a_crash_of_this_run_still_fails_it(emu, tmp_path, tiny_tflite, capsys) -> None:
    emu.faults.app_crash = True
    code = main(bench_args(tiny_tflite, emu, tmp_path))
    err = capsys.readouterr().err
    assert code == ExitCode.DEVICE_ERROR
    assert "crashed" in err and "FATAL EXCEPTION" in err
    assert not app_running(emu) and work_dir(emu) == []


@pytest.mark.parametrize("stall_match", [None, "run-as"], ids=["every-reply", "result-reads"])
def test_timeout_bounds_the_whole_run_on_a_stalled_device(emu, tmp_path, tiny_tflite, capsys,
                                                          stall_match) -> None:
    emu.faults.stall_seconds = 8.0
    emu.faults.stall_match = stall_match
    started = time.monotonic()
    code = main(bench_args(tiny_tflite, emu, tmp_path, "--timeout", "5"))
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == EXIT_TIMEOUT, err
    assert elapsed < 7.5, f"--timeout 5 took {elapsed:.1f} s"
    if stall_match == "run-as":  # the clean-up's run-as stalls too: the user is told
        assert "could not remove run" in err and "the next bench on this device removes" in err


def test_ctrl_c_with_several_devices_cancels_each_and_waits_for_its_clean_up() -> None:
    from mobilize.bench import fleet

    cleaned: list[str] = []
    main_thread = threading.main_thread().ident

    def work(serial: str) -> None:
        cancel = fleet._worker.cancel
        if serial == "a":  # Ctrl-C while both devices are busy
            threading.Timer(0.3, signal.pthread_kill, (main_thread, signal.SIGINT)).start()
        assert cancel.wait(30)
        time.sleep(0.2)  # cleaning its device up
        cleaned.append(serial)

    with pytest.raises(KeyboardInterrupt):
        fleet.fan_out(["a", "b"], work)
    assert sorted(cleaned) == ["a", "b"]
