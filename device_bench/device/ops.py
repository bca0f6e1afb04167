"""High-level device operations, written against the Device protocol only.

Each runs one shell command (every remote argument quoted with shlex.quote), checks its
exit code and hands the output to a pure parser in mobilize.device.parse.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mobilize.bench import app_contract
from mobilize.contract.files import sha256_file as local_sha256
from mobilize.device.device import Device, ShellResult
from mobilize.device.errors import AdbError, DeviceError, DeviceLostError, DeviceTimeoutError
from mobilize.device.parse import (
    BatteryInfo,
    MemInfo,
    PackageInfo,
    ThermalStatus,
    parse_battery,
    parse_getprop,
    parse_meminfo,
    parse_package_info,
    parse_sha256sum,
    parse_thermal_status,
)
from mobilize.device.transports import quote
from mobilize.errors import ExitCode

SHORT_TIMEOUT_S = 15.0
# After a run's deadline, what is left of it (result excerpt, stopping the app, removing
# its files) gets this much more, all together; what does not fit is cleaned up by the
# next session on the device.
WRAP_UP_S = 1.5


class RunInterrupted(DeviceError):
    """Ctrl-C in another thread: this device's run stops (and cleans up) at its next call."""

    exit_code = ExitCode.INTERRUPTED


class Deadline:
    """What is left of a time limit: every device call gets min(its own timeout, time left).

    `extend` gives back time spent in a wait that has its own limit (the cool-down gate, the
    device lock, installing the app); `cancel` (set on Ctrl-C) ends it at the next call.
    """

    def __init__(
        self,
        seconds: float,
        *,
        what: str = "the run",
        serial: str | None = None,
        hint: str | None = None,
        cancel: threading.Event | None = None,
        _end: float | None = None,
    ) -> None:
        self.seconds = seconds
        self.what = what
        self.serial = serial
        self.hint = hint
        self.cancel = cancel
        self._end = time.monotonic() + seconds if _end is None else _end

    def left(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0

    def extend(self, seconds: float) -> None:
        self._end += max(0.0, seconds)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunInterrupted(f"{self.what}: interrupted", serial=self.serial)

    def check(self) -> None:
        self.check_cancel()
        if self.expired():
            raise self.error()

    def timeout(self, own: float = SHORT_TIMEOUT_S) -> float:
        """The timeout of the next device call; raises when no time is left."""
        self.check()
        return max(0.1, round(min(own, self.left()), 1))  # "5.0 s" in messages

    def error(self) -> DeviceTimeoutError:
        return DeviceTimeoutError(
            f"{self.what} ran past its time limit",
            serial=self.serial,
            timeout_s=self.seconds,
            hint=self.hint or "raise --timeout, or check that the device still answers",
        )

    def sleep(self, seconds: float) -> None:
        """Sleep, but never past the deadline; a cancel wakes it at once."""
        pause = max(0.0, min(seconds, self.left()))
        if self.cancel is not None:
            self.cancel.wait(pause)
        else:
            time.sleep(pause)

    def grace(self, seconds: float = WRAP_UP_S) -> Deadline:
        """The wrap-up window: this deadline plus `seconds`, however often it is asked for."""
        return Deadline(
            self.seconds + seconds, what=self.what, serial=self.serial, _end=self._end + seconds
        )


def bounded(deadline: Deadline | float | None, own: float = SHORT_TIMEOUT_S) -> float:
    """A call's timeout: its own, or less when a deadline (or a plain number) says so."""
    if deadline is None:
        return own
    if isinstance(deadline, Deadline):
        return deadline.timeout(own)
    return min(own, deadline)


@dataclass(frozen=True)
class DeviceInfo:
    serial: str
    model: str | None
    manufacturer: str | None
    board: str | None
    soc: str | None
    abi: str | None
    abis: tuple[str, ...]
    sdk: int | None
    android_version: str | None
    gpu_renderer: str | None
    serialno: str | None = None  # ro.serialno: the device's own name, whatever the address

    def as_schema_dict(self) -> dict[str, object]:
        """The `device` object of the result schema."""
        return {
            "model": self.model,
            "manufacturer": self.manufacturer,
            "board": self.board,
            "soc": self.soc,
            "abi": self.abi,
            "sdk": self.sdk,
            "android_version": self.android_version,
            "gpu_renderer": self.gpu_renderer,
        }


def run_checked(
    device: Device,
    command: str,
    timeout: float = SHORT_TIMEOUT_S,
    what: str | None = None,
    hint: str | None = None,
) -> ShellResult:
    """Run a command line and raise an AdbError with its output when it exits non-zero."""
    result = device.shell(command, timeout)
    if not result.ok:
        raise AdbError(
            what or "a device command failed",
            command=command,
            serial=device.serial,
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            hint=hint,
        )
    return result


Limit = Deadline | float | None  # a deadline, a plain timeout, or None (the call's own)


def getprops(device: Device, limit: Limit = None) -> dict[str, str]:
    return parse_getprop(
        run_checked(device, "getprop", bounded(limit), what="cannot read device properties").stdout
    )


def device_info(device: Device, limit: Limit = None) -> DeviceInfo:
    props = getprops(device, limit)
    abis = tuple(a for a in props.get("ro.product.cpu.abilist", "").split(",") if a)
    sdk_text = props.get("ro.build.version.sdk", "")
    return DeviceInfo(
        serial=device.serial,
        model=props.get("ro.product.model"),
        manufacturer=props.get("ro.product.manufacturer"),
        board=props.get("ro.product.board") or props.get("ro.board.platform"),
        soc=_soc(props),
        abi=props.get("ro.product.cpu.abi") or (abis[0] if abis else None),
        abis=abis or tuple(filter(None, [props.get("ro.product.cpu.abi")])),
        sdk=int(sdk_text) if sdk_text.isdigit() else None,
        android_version=props.get("ro.build.version.release"),
        gpu_renderer=gpu_renderer(device, limit) or props.get("ro.hardware.egl"),
        serialno=props.get("ro.serialno", "").strip() or None,
    )


def _soc(props: dict[str, str]) -> str | None:
    maker, model = props.get("ro.soc.manufacturer"), props.get("ro.soc.model")
    if model:
        return f"{maker} {model}" if maker else model
    return props.get("ro.board.platform") or props.get("ro.hardware")


def gpu_renderer(device: Device, limit: Limit = None) -> str | None:
    """The GLES line of SurfaceFlinger (e.g. `Qualcomm, Adreno (TM) 740, OpenGL ES 3.2`)."""
    result = device.shell("dumpsys SurfaceFlinger", bounded(limit))
    if not result.ok:
        return None
    for line in result.stdout.splitlines():
        if line.strip().startswith("GLES:"):
            return line.strip()[len("GLES:") :].strip()
    return None


def battery(device: Device, limit: Limit = None) -> BatteryInfo:
    return parse_battery(
        run_checked(
            device, "dumpsys battery", bounded(limit), what="cannot read the battery"
        ).stdout
    )


def thermal_status(device: Device, limit: Limit = None) -> ThermalStatus | None:
    result = device.shell("dumpsys thermalservice", bounded(limit))
    return parse_thermal_status(result.stdout) if result.ok else None


def meminfo(device: Device, package: str = app_contract.PACKAGE, limit: Limit = None) -> MemInfo:
    result = device.shell(f"dumpsys meminfo {quote(package)}", bounded(limit))
    return parse_meminfo(result.stdout) if result.ok else MemInfo(None, None, None, None)


def package_info(
    device: Device, package: str = app_contract.PACKAGE, limit: Limit = None
) -> PackageInfo | None:
    result = device.shell(f"dumpsys package {quote(package)}", bounded(limit))
    return parse_package_info(package, result.stdout) if result.ok else None


def pidof(device: Device, package: str = app_contract.PACKAGE, limit: Limit = None) -> int | None:
    """The pid of the app's process, None when it does not run."""
    result = device.shell(f"pidof {quote(package)}", bounded(limit))
    pids = [int(word) for word in result.stdout.split() if word.isdigit()]
    return pids[0] if result.ok and pids else None


def remote_sha256(device: Device, remote: str, timeout: Limit = 60.0) -> str | None:
    result = device.shell(f"sha256sum {quote(remote)}", bounded(timeout, 60.0))
    return parse_sha256sum(result.stdout) if result.ok else None


def make_dir(device: Device, remote: str, limit: Limit = None) -> None:
    run_checked(
        device,
        f"mkdir -p {quote(remote)}",
        bounded(limit),
        what=f"cannot create {remote} on the device",
    )


def remove(device: Device, remote: str, limit: Limit = None) -> None:
    """Remove a file; a failure here must not hide the error that brought us here."""
    try:
        device.shell(f"rm -f {quote(remote)}", bounded(limit))
    except (DeviceLostError, DeviceTimeoutError, AdbError):
        pass


def push_verified(
    device: Device,
    local: Path,
    remote: str,
    *,
    timeout: float,
    sha256: str | None = None,
    deadline: Deadline | None = None,
) -> str:
    """Push a file and check that the device holds the same bytes (sha256)."""
    expected = sha256 or local_sha256(local)
    device.push(local, remote, bounded(deadline, timeout))
    actual = remote_sha256(device, remote, deadline if deadline is not None else 60.0)
    if actual != expected:
        remove(device, remote)
        raise AdbError(
            "the pushed file differs from the local one (sha256 mismatch)",
            command=f"sha256sum {quote(remote)}",
            serial=device.serial,
            stdout=f"expected {expected}, device has {actual}",
            hint="check free space on the device (`df /data`) and the connection, then run again",
        )
    return expected


def push_with_retries(
    device_factory: Callable[[Device | None], Device],
    local: Path,
    remote: str,
    *,
    timeout: float,
    retries: int,
    announce: Callable[[str], None],
    sha256: str | None = None,
    deadline: Deadline | None = None,
) -> tuple[Device, str]:
    """Push, reconnecting and retrying up to `retries` times when the device is lost.

    Returns the (possibly new) device and the sha256. `device_factory(old)` opens a fresh
    connection; only a lost device or a timeout is retried, never a refusal.
    """
    device = device_factory(None)
    attempt = 0
    while True:
        try:
            return device, push_verified(
                device, local, remote, timeout=timeout, sha256=sha256, deadline=deadline
            )
        except (DeviceLostError, DeviceTimeoutError) as error:
            attempt += 1
            if attempt > retries:
                raise
            announce(
                f"{_with_serial(error.message.splitlines()[0], device.serial)}: retrying the push "
                f"({attempt}/{retries})"
            )
            if deadline is not None:
                deadline.sleep(min(2.0, 0.5 * attempt))
                deadline.check()
            else:
                time.sleep(min(2.0, 0.5 * attempt))
            device = device_factory(device)


def _with_serial(message: str, serial: str) -> str:
    """DeviceError already starts its message with [serial]; add it only where it is missing."""
    return message if serial in message else f"[{serial}] {message}"
