"""Faults the emulated device can be told to show, for the harness's failure-path tests.

One mutable Faults object per emulator; tests change its fields while the emulator runs
(plain attribute writes, read by the serving threads on each use).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from mobilize.bench.app_contract import ThermalStatus


@dataclass
class Faults:
    # Cut the TCP connection once this many file bytes of one sync transfer (push or pull)
    # have passed. None: never.
    drop_after_bytes: int | None = None
    # How many more times the drop fires (None: every transfer). Lets a test check retries.
    drops_left: int | None = None
    # Sleep this long before a service answers (after the stream is opened).
    stall_seconds: float = 0.0
    # Only stall services whose destination contains this text (None: every service).
    stall_match: str | None = None
    # Reject every signature and every new public key: the device stays "unauthorized".
    refuse_auth: bool = False
    # The data partition is full: pushes fail with ENOSPC, df shows nothing available.
    disk_full: bool = False
    # The benchmark app crashes (FATAL EXCEPTION in logcat, no result file).
    app_crash: bool = False
    # The benchmark app's interpreter fails to load the model (status model_load_failed).
    model_load_fails: bool = False
    # The thermal status the device reaches during a benchmark run (None: stays as is).
    thermal_during_run: ThermalStatus | None = None
    # Seconds the raised thermal status lasts after the run before it falls back.
    thermal_recovery_seconds: float = 5.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def drop_threshold(self) -> int | None:
        """After how many bytes to cut the transfer starting now; None when not armed."""
        with self._lock:
            if self.drop_after_bytes is None:
                return None
            if self.drops_left is not None and self.drops_left <= 0:
                return None
            return self.drop_after_bytes

    def consume_drop(self) -> None:
        """Called when a drop really happens."""
        with self._lock:
            if self.drops_left is not None:
                self.drops_left -= 1

    def stall_for(self, destination: str) -> float:
        if self.stall_seconds <= 0:
            return 0.0
        if self.stall_match is not None and self.stall_match not in destination:
            return 0.0
        return self.stall_seconds

    def clear(self) -> None:
        """Back to a healthy device."""
        defaults = Faults()
        for name in FAULT_NAMES:
            setattr(self, name, getattr(defaults, name))

    def apply_text(self, spec: str) -> None:
        """Set one fault from text such as `disk-full`, `drop_after_bytes=1000000` or
        `thermal_during_run=severe` (the CLI's --fault)."""
        name, has_value, value = spec.partition("=")
        name = name.strip().replace("-", "_")
        parser = _PARSERS.get(name)
        if parser is None:
            raise ValueError(f"unknown fault '{name}' (known: {', '.join(FAULT_NAMES)})")
        if not has_value:
            if parser is not _flag:
                raise ValueError(f"fault '{name}' needs a value: {name}=VALUE")
            value = "true"
        setattr(self, name, parser(value))


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _thermal_from_text(text: str) -> ThermalStatus:
    text = text.strip().lower()
    if text.isdigit():
        return ThermalStatus(int(text))
    try:
        return ThermalStatus[text.upper()]
    except KeyError as error:
        names = ", ".join(status.label for status in ThermalStatus)
        raise ValueError(f"unknown thermal status '{text}' (one of {names})") from error


_PARSERS = {
    "drop_after_bytes": int,
    "drops_left": int,
    "stall_seconds": float,
    "stall_match": str,
    "refuse_auth": _flag,
    "disk_full": _flag,
    "app_crash": _flag,
    "model_load_fails": _flag,
    "thermal_during_run": _thermal_from_text,
    "thermal_recovery_seconds": float,
}
FAULT_NAMES = tuple(_PARSERS)
