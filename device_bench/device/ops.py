"""High-level device operations, written against the Device protocol only.

Each runs one shell command (every remote argument quoted with shlex.quote), checks its
exit code and hands the output to a pure parser in mobilize.device.parse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mobilize.bench import app_contract
from mobilize.contract.files import sha256_file as local_sha256
from mobilize.device.device import Device, ShellResult
from mobilize.device.errors import AdbError, DeviceLostError, DeviceTimeoutError
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

SHORT_TIMEOUT_S = 15.0


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


def getprops(device: Device) -> dict[str, str]:
    return parse_getprop(
        run_checked(device, "getprop", what="cannot read device properties").stdout
    )


def device_info(device: Device) -> DeviceInfo:
    props = getprops(device)
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
        gpu_renderer=gpu_renderer(device) or props.get("ro.hardware.egl"),
    )


def _soc(props: dict[str, str]) -> str | None:
    maker, model = props.get("ro.soc.manufacturer"), props.get("ro.soc.model")
    if model:
        return f"{maker} {model}" if maker else model
    return props.get("ro.board.platform") or props.get("ro.hardware")


def gpu_renderer(device: Device) -> str | None:
    """The GLES line of SurfaceFlinger (e.g. `Qualcomm, Adreno (TM) 740, OpenGL ES 3.2`)."""
    result = device.shell("dumpsys SurfaceFlinger", SHORT_TIMEOUT_S)
    if not result.ok:
        return None
    for line in result.stdout.splitlines():
        if line.strip().startswith("GLES:"):
            return line.strip()[len("GLES:") :].strip()
    return None


def battery(device: Device) -> BatteryInfo:
    return parse_battery(
        run_checked(device, "dumpsys battery", what="cannot read the battery").stdout
    )


def thermal_status(device: Device) -> ThermalStatus | None:
    result = device.shell("dumpsys thermalservice", SHORT_TIMEOUT_S)
    return parse_thermal_status(result.stdout) if result.ok else None


def meminfo(device: Device, package: str = app_contract.PACKAGE) -> MemInfo:
    result = device.shell(f"dumpsys meminfo {quote(package)}", SHORT_TIMEOUT_S)
    return parse_meminfo(result.stdout) if result.ok else MemInfo(None, None, None, None)


def package_info(device: Device, package: str = app_contract.PACKAGE) -> PackageInfo | None:
    result = device.shell(f"dumpsys package {quote(package)}", SHORT_TIMEOUT_S)
    return parse_package_info(package, result.stdout) if result.ok else None


def remote_sha256(device: Device, remote: str, timeout: float = 60.0) -> str | None:
    result = device.shell(f"sha256sum {quote(remote)}", timeout)
    return parse_sha256sum(result.stdout) if result.ok else None


def make_dir(device: Device, remote: str) -> None:
    run_checked(device, f"mkdir -p {quote(remote)}", what=f"cannot create {remote} on the device")


def remove(device: Device, remote: str) -> None:
    """Remove a file; a failure here must not hide the error that brought us here."""
    try:
        device.shell(f"rm -f {quote(remote)}", SHORT_TIMEOUT_S)
    except (DeviceLostError, DeviceTimeoutError, AdbError):
        pass


def push_verified(
    device: Device, local: Path, remote: str, *, timeout: float, sha256: str | None = None
) -> str:
    """Push a file and check that the device holds the same bytes (sha256)."""
    expected = sha256 or local_sha256(local)
    device.push(local, remote, timeout)
    actual = remote_sha256(device, remote)
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
) -> tuple[Device, str]:
    """Push, reconnecting and retrying up to `retries` times when the device is lost.

    Returns the (possibly new) device and the sha256. `device_factory(old)` opens a fresh
    connection; only a lost device or a timeout is retried, never a refusal.
    """
    device = device_factory(None)
    attempt = 0
    while True:
        try:
            return device, push_verified(device, local, remote, timeout=timeout, sha256=sha256)
        except (DeviceLostError, DeviceTimeoutError) as error:
            attempt += 1
            if attempt > retries:
                raise
            announce(
                f"{_with_serial(error.message.splitlines()[0], device.serial)}: retrying the push "
                f"({attempt}/{retries})"
            )
            time.sleep(min(2.0, 0.5 * attempt))
            device = device_factory(device)


def _with_serial(message: str, serial: str) -> str:
    """DeviceError already starts its message with [serial]; add it only where it is missing."""
    return message if serial in message else f"[{serial}] {message}"
