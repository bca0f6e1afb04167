"""The emulated device: profile, file system, packages, apps, logcat, thermal state, and
the ADB server that makes all of it reachable on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mobilize.bench import app_contract
from mobilize.emulator import android_tools, toolbox
from mobilize.emulator.app import AppManager
from mobilize.emulator.auth import TrustedKeyStore
from mobilize.emulator.faults import Faults, ThermalStatus
from mobilize.emulator.logcat import Logcat, Priority
from mobilize.emulator.packages import ApkManifest, PackageManager
from mobilize.emulator.profile import DeviceProfile
from mobilize.emulator.sandbox import Sandbox
from mobilize.emulator.services import open_service
from mobilize.emulator.shell import CommandFunction
from mobilize.emulator.transport import Connection, Service

log = logging.getLogger(__name__)

ADB_KEYS_DEVICE_PATH = "/data/misc/adb/adb_keys"  # system-only: the shell cannot write it
FEATURES = ("shell_v2",)  # what we implement; the stock client then uses shell v2 for exit codes


class ThermalState:
    """The thermal status and battery temperature, raised for a while by the fault."""

    def __init__(self, base: ThermalStatus, battery_tenths: int) -> None:
        self.base = base
        self.battery_base_tenths = battery_tenths
        self._raised: ThermalStatus | None = None
        self._raised_until: float | None = None
        self._lock = threading.Lock()

    def status(self) -> ThermalStatus:
        with self._lock:
            if self._raised is not None and (
                self._raised_until is None or time.monotonic() < self._raised_until
            ):
                return max(self._raised, self.base)
            self._raised = None
            return self.base

    def raise_to(self, status: ThermalStatus, seconds: float | None) -> None:
        """Raise until `seconds` from now (None: until told otherwise)."""
        with self._lock:
            self._raised = status
            self._raised_until = None if seconds is None else time.monotonic() + seconds

    def battery_temperature_tenths(self) -> int:
        # A hot phone has a warm battery: 4 degrees C per thermal level, a rough rule.
        return self.battery_base_tenths + 40 * int(self.status())


class EmulatedDevice:
    def __init__(
        self,
        root: Path,
        profile: DeviceProfile,
        *,
        accept_new_keys: bool = False,
        trusted_keys_file: Path | None = None,
        faults: Faults | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.profile = profile
        self.sandbox = Sandbox(root)
        self.faults = faults or Faults()
        self.accept_new_keys = accept_new_keys
        self.trusted_keys = TrustedKeyStore(
            trusted_keys_file or self.sandbox.join(ADB_KEYS_DEVICE_PATH)
        )
        self.logcat = Logcat()
        self.thermal = ThermalState(profile.thermal_status, profile.battery_temperature_tenths_c)
        self.packages = PackageManager(self.sandbox, profile.sdk)
        self.apps = AppManager(self)
        self.commands: dict[str, CommandFunction] = {**toolbox.COMMANDS, **android_tools.COMMANDS}
        # Stable per sandbox folder, like a phone's serial number across reboots.
        digest = hashlib.sha256(str(self.sandbox.root).encode()).hexdigest()[:10].upper()
        self.serialno = profile.properties.get("ro.serialno", f"EMU{digest}")
        self._notice = notice
        self._install_bundled_app()
        self.logcat.log(Priority.INFO, "adbd", "adbd started", pid=700)

    def _install_bundled_app(self) -> None:
        if self.profile.app_preinstalled and self.packages.is_fresh:
            manifest = ApkManifest(
                app_contract.PACKAGE, self.profile.app_version_code, self.profile.app_version_name
            )
            self.packages.install_manifest(manifest, None, allow_downgrade=True)

    def properties(self) -> dict[str, str]:
        return {**self.profile.properties, "ro.serialno": self.serialno}

    # --- what the ADB connection asks for -----------------------------------------------
    def banner(self) -> str:
        props = self.properties()
        fields = [
            f"{name}={props.get(name, '')}"
            for name in ("ro.product.name", "ro.product.model", "ro.product.device")
        ]
        fields.append("features=" + ",".join(FEATURES))
        return "device::" + ";".join(fields)

    def open_service(self, destination: str) -> Service | None:
        return open_service(self, destination)

    def notice(self, message: str) -> None:
        self.logcat.log(Priority.WARN, "adbd", message, pid=700)
        log.warning("%s", message)
        if self._notice is not None:
            self._notice(message)


class AdbServer:
    """Listens on 127.0.0.1:PORT and serves each connection in its own thread."""

    def __init__(self, device: EmulatedDevice, port: int = 0, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulated device binds to the loopback interface only")
        self.device = device
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(16)
        self.host = "127.0.0.1"
        self.port = self._listener.getsockname()[1]
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"adbd-{self.port}", daemon=True
        )

    def start(self) -> AdbServer:
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, address = self._listener.accept()
            except OSError:
                break
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(sock, f"{address[0]}:{address[1]}", self.device)
            with self._lock:
                self._connections = [c for c in self._connections if c.alive]
                self._connections.append(connection)
            threading.Thread(
                target=connection.serve, name=f"adb-conn-{address[1]}", daemon=True
            ).start()

    def disconnect_all(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.drop()

    def stop(self) -> None:
        self._stopped.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        self.disconnect_all()
        self.device.apps.stop_all()
        self._thread.join(timeout=5)
