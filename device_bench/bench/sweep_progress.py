"""How far a sweep has got: runs done of the runs planned, and an ETA from the pace so far.

run_sweep keeps a RunClock and tells a SweepProgress (the CLI's bar on stderr) as each run
starts and ends; each run's start line carries its place and the ETA as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class RunClock:
    """Runs done of the runs planned, and when the rest will be done at the pace so far."""

    total: int
    done: int = 0
    started: float = field(default_factory=lambda: time.monotonic())
    last_finished: float | None = None

    def finish(self) -> None:
        self.done += 1
        self.last_finished = time.monotonic()

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the mean time of the finished runs (their quality pass included)
        times the runs left, less the time the current run has taken so far; None before
        the first run ends."""
        if self.done == 0 or self.last_finished is None:
            return None
        mean = (self.last_finished - self.started) / self.done
        left = mean * max(0, self.total - self.done) - (time.monotonic() - self.last_finished)
        return max(0.0, left) if self.done < self.total else 0.0


class SweepProgress(Protocol):
    """What the sweep reports as it goes (the CLI draws a bar on stderr)."""

    def run_started(self, clock: RunClock, label: str) -> None: ...

    def run_finished(self, clock: RunClock) -> None: ...


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA after the first run"
    whole = round(seconds)
    return f"ETA {whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"ETA {whole} s"
