"""The sweep's progress: runs done of the total and an ETA from the runs so far, on a stand-in
session (no device), and the live bar as a terminal shows it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mobilize.bench import sweep_progress
from mobilize.bench.config import BenchConfig, Delegate
from mobilize.bench.model_input import ModelToBench
from mobilize.bench.sweep import run_sweep
from mobilize.bench.sweep_cli import ProgressBar
from mobilize.bench.sweep_progress import RunClock, eta_text
from mobilize.device import ops
from mobilize.device.errors import AppError

INFO = ops.DeviceInfo("SERIAL", "Pixel 7", "Google", "panther", "gs201", "arm64-v8a",
                      ("arm64-v8a",), 34, "14", "Mali-G710")


class FakeSession:
    serial = "SERIAL"

    def __init__(self, crash: str | None = None) -> None:
        self.crash = crash
        self.ran: list[tuple[str, str]] = []

    def prepare(self) -> ops.DeviceInfo:
        return INFO

    def run(self, model: ModelToBench, config: BenchConfig) -> dict[str, Any]:
        self.ran.append((model.name, config.delegate.value))
        if model.name == self.crash:
            raise AppError("the app crashed", hint="", serial=self.serial)
        return {"result": {"status": "ok"}, "harness": {}}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def run_started(self, clock: RunClock, label: str) -> None:
        self.events.append(("start", clock.done, clock.total))

    def run_finished(self, clock: RunClock) -> None:
        self.events.append(("end", clock.done, clock.total))


class FakeTime:
    def __init__(self, now: list[float]) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now[0]


def models(*names: str) -> list[ModelToBench]:
    return [ModelToBench(Path(f"/x/{n}.tflite"), n, f"tflite-{n}", "0" * 64, 1) for n in names]


def test_every_run_is_counted_and_announced_with_its_place() -> None:
    lines: list[str] = []
    recorder = Recorder()
    run_sweep(FakeSession(), models("a", "b"), [Delegate.CPU, Delegate.NNAPI], BenchConfig(),
              None, repeat=2, announce=lines.append, save=lambda _: None, progress=recorder)
    assert [e for e in recorder.events if e[0] == "end"] == [("end", i, 8) for i in range(1, 9)]
    assert lines[0] == "[SERIAL] [1/8] a on cpu (round 1/2), ETA after the first run"
    assert lines[1].startswith("[SERIAL] [2/8] a on nnapi (round 1/2), ETA ")


def test_a_crashed_candidate_leaves_the_total() -> None:
    recorder = Recorder()
    session = FakeSession(crash="b")
    run_sweep(session, models("a", "b"), [Delegate.CPU], BenchConfig(), None, repeat=3,
              announce=lambda _: None, save=lambda _: None, progress=recorder)
    assert len(session.ran) == 4  # a three times, b once (then it is done for)
    assert recorder.events[-1] == ("end", 4, 4)


def test_eta_is_the_pace_so_far_times_the_runs_left(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(sweep_progress, "time", FakeTime(now))
    clock = RunClock(total=5)
    assert clock.eta_s is None
    now[0] = 170.0  # a 70 s int16x8 run
    clock.finish()
    assert clock.eta_s == pytest.approx(4 * 70.0)
    now[0] = 200.0  # 30 s into the next: the estimate counts down
    assert clock.eta_s == pytest.approx(4 * 70.0 - 30.0)
    assert eta_text(250.0) == "ETA 4 min 10 s" and eta_text(42.4) == "ETA 42 s"


def test_the_bar_shows_runs_done_of_the_total_and_the_eta(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(sweep_progress, "time", FakeTime(now))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    clock = RunClock(total=18)
    with ProgressBar(console) as bar:
        assert bar.bar is not None  # a terminal: a live bar
        bar.run_started(clock, "fast_style:tflite-int16x8 on cpu (round 1/2)")
        now[0] = 70.0
        clock.finish()
        bar.run_finished(clock)
        bar.run_started(clock, "fast_style:tflite-int16x8 on gpu (round 1/2)")
        assert bar.bar is not None
        bar.bar.refresh()
        shown = buffer.getvalue()
    assert "1/18" in shown and "runs" in shown and "ETA 19 min 50 s" in shown
    assert "int16x8 on gpu" in shown


def test_no_bar_in_a_pipe_or_a_log() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with ProgressBar(console) as bar:
        bar.run_started(RunClock(total=2), "x")
        assert bar.bar is None
