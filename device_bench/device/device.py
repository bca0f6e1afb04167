"""The small protocol every device transport implements.

High-level operations (install the app, push a model, read properties) are written against
this protocol only, so they run the same over adb-shell USB, adb-shell TCP and the stock
adb client. Every call takes an explicit timeout in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ShellResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Device(Protocol):
    serial: str

    def shell(self, command: str, timeout: float) -> ShellResult:
        """Run a shell command line on the device (arguments already quoted)."""
        ...

    def push(self, local: Path, remote: str, timeout: float) -> None: ...

    def pull(self, remote: str, local: Path, timeout: float) -> None: ...

    def close(self) -> None: ...
