"""Debian's stock `adb` client and the adb server behind it, as a Device.

The way to reach a phone whose USB interface an adb server already holds
(LIBUSB_ERROR_BUSY), and any device an adb server lists.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from mobilize.device.device import ShellResult
from mobilize.device.errors import (
    AdbError,
    DeviceError,
    DeviceLostError,
    DeviceTimeoutError,
    NoDeviceError,
    UnauthorizedError,
)
from mobilize.device.parse import parse_adb_devices
from mobilize.device.transports import (
    CONNECT_TIMEOUT_S,
    DEFAULT_ADB_SERVER_PORT,
    EXIT_MARKER,
    Announce,
    ConnectOptions,
    split_exit_marker,
    wrap_with_exit_marker,
)


class AdbClientDevice:
    """A device reached through Debian's stock `adb` client and its server."""

    def __init__(
        self, serial: str, adb_path: str = "adb", server_port: int = DEFAULT_ADB_SERVER_PORT
    ) -> None:
        self.serial = serial
        self._adb_path = adb_path
        self._server_port = server_port

    def shell(self, command: str, timeout: float) -> ShellResult:
        completed = self._run(["shell", wrap_with_exit_marker(command)], timeout, command)
        if completed.returncode != 0 and EXIT_MARKER not in completed.stdout:
            raise self._client_failure(completed, command)
        result = split_exit_marker(command, completed.stdout)
        return ShellResult(result.command, result.exit_code, result.stdout, completed.stderr)

    def push(self, local: Path, remote: str, timeout: float) -> None:
        command = f"push {local} {remote}"
        completed = self._run(["push", str(local), remote], timeout, command)
        if completed.returncode != 0:
            raise self._client_failure(completed, command)

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        command = f"pull {remote} {local}"
        completed = self._run(["pull", remote, str(local)], timeout, command)
        if completed.returncode != 0:
            local.unlink(missing_ok=True)
            raise self._client_failure(completed, command)

    def close(self) -> None:
        """Nothing to close: each call is its own client process."""

    def _run(
        self, args: list[str], timeout: float, command: str
    ) -> subprocess.CompletedProcess[str]:
        return run_adb_client(
            [self._adb_path, "-P", str(self._server_port), "-s", self.serial, *args],
            timeout,
            serial=self.serial,
            command=command,
        )

    def _client_failure(
        self, completed: subprocess.CompletedProcess[str], command: str
    ) -> DeviceError:
        stderr = completed.stderr or ""
        lowered = (stderr + completed.stdout).lower()
        if "unauthorized" in lowered:
            return UnauthorizedError(
                "the device has not authorized this computer",
                hint='unlock the phone and tap "Allow" on the USB debugging prompt, then run again',
                serial=self.serial,
            )
        if any(
            text in lowered
            for text in (
                "not found",
                "offline",
                "no devices",
                "closed",
                "connection reset",
                "protocol fault",
            )
        ):
            return DeviceLostError(
                f"the adb client lost the device: {stderr.strip() or completed.stdout.strip()}",
                hint="check the cable or network and `adb devices`; "
                "--retries N retries a lost push",
                serial=self.serial,
            )
        return AdbError(
            "the adb client failed",
            command=command,
            serial=self.serial,
            exit_code=completed.returncode,
            stdout=completed.stdout,
            stderr=stderr,
        )


def run_adb_client(
    argv: list[str], timeout: float, *, serial: str | None, command: str
) -> subprocess.CompletedProcess[str]:
    """Run the stock client with a hard timeout; its own failures become typed errors."""
    if shutil.which(argv[0]) is None:
        raise DeviceError(
            f"the stock adb client `{argv[0]}` is not installed",
            hint="install it (Debian: `sudo apt-get install adb`) or use --transport usb/tcp",
        )
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, errors="replace", check=False
        )
    except subprocess.TimeoutExpired as error:
        raise DeviceTimeoutError(
            "the adb client did not finish",
            serial=serial,
            command=command,
            timeout_s=timeout,
            hint="check `adb devices`; a hung adb server can be restarted with `adb kill-server`",
        ) from error


def adb_server_running(port: int = DEFAULT_ADB_SERVER_PORT) -> bool:
    """True when an adb server listens; asking it would otherwise start one (and grab USB)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def adb_client_connect(serial: str, options: ConnectOptions, announce: Announce) -> None:
    """`adb connect host:port` so the server knows a TCP device before we use it."""
    completed = run_adb_client(
        [options.adb_path, "-P", str(options.adb_server_port), "connect", serial],
        CONNECT_TIMEOUT_S,
        serial=serial,
        command=f"adb connect {serial}",
    )
    text = (completed.stdout + completed.stderr).lower()
    if "failed to authenticate" in text:
        # The server sent its public key: the device now shows the "Allow" prompt.
        announce(
            f'[{serial}] the device does not know the adb server\'s key yet: tap "Allow" '
            f"on it (waiting up to {options.auth_timeout_s:g} s)"
        )
    elif "connected to" not in text:
        raise NoDeviceError(
            f"the adb client could not connect to {serial}: {text.strip()}",
            hint="check the address and that the device listens (`adb tcpip 5555` on a phone)",
            serial=serial,
        )
    _wait_client_state(serial, options)


def _wait_client_state(serial: str, options: ConnectOptions) -> None:
    deadline = time.monotonic() + options.auth_timeout_s
    while True:
        state = {entry.serial: entry.state for entry in list_adb_server_devices(options)}.get(
            serial
        )
        if state == "device":
            return
        if time.monotonic() >= deadline:
            if state == "unauthorized":
                raise UnauthorizedError(
                    "the device did not authorize this computer's key",
                    hint='tap "Allow" on the device\'s USB debugging prompt, then run again',
                    serial=serial,
                )
            raise NoDeviceError(
                f"the adb server reports the device as {state or 'missing'}",
                serial=serial,
                hint="check `adb devices`",
            )
        time.sleep(0.2)


def list_adb_server_devices(options: ConnectOptions):
    completed = run_adb_client(
        [options.adb_path, "-P", str(options.adb_server_port), "devices", "-l"],
        CONNECT_TIMEOUT_S,
        serial=None,
        command="adb devices -l",
    )
    return parse_adb_devices(completed.stdout)
