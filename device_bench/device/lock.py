"""One benchmark per device at a time.

Two `mobilize bench` processes on the same device would push over each other's files and
measure each other's load. A lock file on the host (fcntl, released by the OS when a
process dies) makes the second wait for the first, up to a deadline.

A device has many names: `127.0.0.1:5555` and `localhost:5555`, a USB serial and the
`HOST:PORT` of the same phone after `adb tcpip`. The lock that counts is keyed by what the
device says it is (`identity_key`: ro.serialno, read after connecting; the resolved address
where the serial number is missing or a placeholder); the lock on the serial as spelled,
taken before connecting, only keeps one process from opening the same name twice.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mobilize.device.errors import DeviceError

POLL_S = 0.2
# Serial numbers some devices report that name no single device (cheap boards ship with
# these): they would make unrelated devices wait for each other.
PLACEHOLDER_SERIALNOS = frozenset(
    {"", "unknown", "0123456789abcdef", "1234567890abcdef", "0000000000000000", "0"}
)


class DeviceBusyError(DeviceError):
    """Another benchmark holds the device for longer than we were willing to wait."""


def lock_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"mobilize-locks-{os.getuid()}"


def lock_path(serial: str, directory: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)
    return (directory or lock_dir()) / f"{safe}.lock"


def resolved_address(serial: str) -> str | None:
    """`IP:PORT` of a `HOST:PORT` serial (every loopback name is `loopback:PORT`), else None."""
    host, sep, port = serial.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        return None
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        return None
    if any(address.is_loopback for address in addresses):
        return f"loopback:{int(port)}"
    first = sorted(addresses, key=lambda address: (address.version, int(address)))[0]
    return f"{first}:{int(port)}" if first.version == 4 else f"[{first}]:{int(port)}"


def identity_key(serial: str, serialno: str | None) -> str:
    """The lock key of the device behind `serial`: its serial number when it has a usable
    one, else its resolved address, else the serial as given."""
    number = (serialno or "").strip()
    if number.lower() not in PLACEHOLDER_SERIALNOS:
        return f"identity-serialno-{number}"
    address = resolved_address(serial)
    return f"identity-address-{address}" if address else f"identity-serial-{serial}"


@contextmanager
def device_lock(
    serial: str,
    timeout_s: float,
    directory: Path | None = None,
    announce=None,
    *,
    key: str | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[None]:
    """Hold the device's lock (`key`, default the serial); wait up to timeout_s for another
    holder to finish. `cancel` (Ctrl-C in another thread) stops the wait."""
    path = lock_path(key or serial, directory)
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
                if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
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
                if cancel is not None:
                    cancel.wait(POLL_S)
                else:
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
