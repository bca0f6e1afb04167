"""Start an emulated device from Python: the interface tests and the harness code against.

with running_emulator(tmp_path / "device") as device:
    AdbDeviceTcp(device.host, device.port).connect(rsa_keys=[signer])
    ...
    device.faults.disk_full = True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mobilize.emulator.device import AdbServer, EmulatedDevice, ThermalState
from mobilize.emulator.faults import Faults
from mobilize.emulator.logcat import Logcat
from mobilize.emulator.packages import PackageManager
from mobilize.emulator.profile import load_profile


@dataclass
class EmulatorHandle:
    host: str
    port: int
    root: Path
    device: EmulatedDevice
    server: AdbServer

    @property
    def serial(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        return self.device.faults

    @property
    def logcat(self) -> Logcat:
        return self.device.logcat

    @property
    def thermal(self) -> ThermalState:
        return self.device.thermal

    @property
    def packages(self) -> PackageManager:
        return self.device.packages

    def host_path(self, device_path: str) -> Path:
        """Where a device path lies on this machine (tests read results through it)."""
        return self.device.sandbox.join(device_path)

    def disconnect_all(self) -> None:
        """Cut every open ADB connection, as pulling the cable would."""
        self.server.disconnect_all()

    def stop(self) -> None:
        self.server.stop()


def start_emulator(
    root: Path,
    *,
    port: int = 0,
    accept_new_keys: bool = True,
    trusted_keys_file: Path | None = None,
    profile: dict | Path | None = None,
    faults: Faults | None = None,
    notice: Callable[[str], None] | None = None,
) -> EmulatorHandle:
    device = EmulatedDevice(
        Path(root),
        load_profile(profile),
        accept_new_keys=accept_new_keys,
        trusted_keys_file=trusted_keys_file,
        faults=faults,
        notice=notice,
    )
    server = AdbServer(device, port=port).start()
    return EmulatorHandle(server.host, server.port, device.sandbox.root, device, server)


@contextmanager
def running_emulator(
    root: Path,
    *,
    port: int = 0,
    accept_new_keys: bool = True,
    trusted_keys_file: Path | None = None,
    profile: dict | Path | None = None,
) -> Iterator[EmulatorHandle]:
    handle = start_emulator(
        root,
        port=port,
        accept_new_keys=accept_new_keys,
        trusted_keys_file=trusted_keys_file,
        profile=profile,
    )
    try:
        yield handle
    finally:
        handle.stop()
