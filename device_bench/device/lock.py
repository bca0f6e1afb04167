"""One benchmark per device at a time.

Two `mobilize bench` processes on the same device would push over each other's files and
measure each other's load. A per-serial lock file on the host (fcntl, released by the OS
when a process dies) makes the second wait for the first, up to a deadline.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mobilize.device.errors import DeviceError

POLL_S = 0.2


class DeviceBusyError(DeviceError):
    """Another benchmark holds the device for longer than we were willing to wait."""


def lock_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"mobilize-locks-{os.getuid()}"


def lock_path(serial: str, directory: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)
    return (directory or lock_dir()) / f"{safe}.lock"


@contextmanager
def device_lock(
    serial: str, timeout_s: float, directory: Path | None = None, announce=None
) -> Iterator[None]:
    """Hold the device's lock; wait up to timeout_s for another holder to finish."""
    path = lock_path(serial, directory)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        announced = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(descriptor)
                if time.monotonic() >= deadline:
                    raise DeviceBusyError(
                        f"another benchmark (pid {holder or '?'}) is using the device",
                        hint="wait for it to finish, or raise --lock-timeout to queue behind it",
                        serial=serial,
                    ) from None
                if announce and not announced:
                    announce(
                        f"[{serial}] waiting for another benchmark (pid {holder or '?'}) "
                        "to finish with this device"
                    )
                    announced = True
                time.sleep(POLL_S)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _read_holder(descriptor: int) -> str:
    try:
        return os.pread(descriptor, 32, 0).decode().strip()
    except OSError:
        return ""
