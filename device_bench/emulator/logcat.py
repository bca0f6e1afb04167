"""The device log, printed by `logcat -d` in the default threadtime format."""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum


class Priority(Enum):
    VERBOSE = "V"
    DEBUG = "D"
    INFO = "I"
    WARN = "W"
    ERROR = "E"
    FATAL = "F"

    @property
    def rank(self) -> int:
        return "VDIWEF".index(self.value)


@dataclass(frozen=True)
class LogEntry:
    timestamp: float
    pid: int
    tid: int
    priority: Priority
    tag: str
    message: str

    def format(self) -> str:
        seconds = time.gmtime(self.timestamp)
        millis = int((self.timestamp % 1) * 1000)
        stamp = time.strftime("%m-%d %H:%M:%S", seconds) + f".{millis:03d}"
        return (
            f"{stamp} {self.pid:5d} {self.tid:5d} {self.priority.value} {self.tag}: {self.message}"
        )


class Logcat:
    """A bounded ring buffer like the main log buffer."""

    def __init__(self, capacity: int = 20000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def log(
        self, priority: Priority, tag: str, message: str, pid: int = 0, tid: int | None = None
    ) -> None:
        entry = LogEntry(time.time(), pid, pid if tid is None else tid, priority, tag, message)
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def dump(self, filterspecs: list[str] | None = None) -> str:
        lines = [entry.format() for entry in self.entries() if _passes(entry, filterspecs or [])]
        return "".join(line + "\n" for line in lines)

    def text(self) -> str:
        """Everything in the log, for tests and error reports."""
        return self.dump()


def _passes(entry: LogEntry, filterspecs: list[str]) -> bool:
    """logcat's TAG:PRIORITY filters; '*' matches every tag, S silences."""
    if not filterspecs:
        return True
    chosen: str | None = None
    default = "V"
    for spec in filterspecs:
        tag, _, level = spec.partition(":")
        level = (level or "V").upper()
        if tag == "*":
            default = level
        elif fnmatch.fnmatchcase(entry.tag, tag):
            chosen = level
    level = chosen if chosen is not None else default
    if level == "S":
        return False
    return entry.priority.rank >= "VDIWEF".index(level[0]) if level[0] in "VDIWEF" else True
