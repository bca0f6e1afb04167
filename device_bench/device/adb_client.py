"""Debian's stock `adb` client and the adb servers behind it, as a Device.

The way to reach a phone whose USB interface an adb server already holds
(LIBUSB_ERROR_BUSY), and any device an adb server lists: emulator-NNNN, USB serials and
HOST:PORT alike, on this machine's server or on another host's (`-H HOST -P PORT`). Devices
are listed with the adb server protocol itself (`host:devices-l`), with no client process.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mobilize.device.device import ShellResult
from mobilize.device.errors import (
    AdbError,
    DeviceError,
    DeviceLostError,
    DeviceTimeoutError,
    NoDeviceError,
    UnauthorizedError,
    UsageError,
)
from mobilize.device.parse import AdbDeviceEntry, parse_adb_devices
from mobilize.device.transports import (
    CONNECT_TIMEOUT_S,
    DEFAULT_ADB_SERVER_PORT,
    EXIT_MARKER,
    AdbServerAddress,
    Announce,
    ConnectOptions,
    split_exit_marker,
    wrap_with_exit_marker,
)


class AdbClientDevice:
    """A device reached through Debian's stock `adb` client and its server."""

    def __init__(
        self,
        serial: str,
        adb_path: str = "adb",
        server_port: int = DEFAULT_ADB_SERVER_PORT,
        server_host: str = "localhost",
    ) -> None:
        self.serial = serial
        self.adb_server = AdbServerAddress(server_host, server_port)
        self._adb_path = adb_path

    def shell(self, command: str, timeout: float) -> ShellResult:
        completed = self._run(["shell", "--", wrap_with_exit_marker(command)], timeout, command)
        if completed.returncode != 0 and EXIT_MARKER not in completed.stdout:
            raise self._client_failure(completed, command)
        result = split_exit_marker(command, completed.stdout)
        return ShellResult(result.command, result.exit_code, result.stdout, completed.stderr)

    def push(self, local: Path, remote: str, timeout: float) -> None:
        # An absolute local path, after `--` (adb 29's push/pull end their options there):
        # a model named `-x.tflite` is a file, never an option.
        command = f"push {local} {remote}"
        completed = self._run(["push", "--", os.path.abspath(local), remote], timeout, command)
        if completed.returncode != 0:
            raise self._client_failure(completed, command)

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        command = f"pull {remote} {local}"
        completed = self._run(["pull", "--", remote, os.path.abspath(local)], timeout, command)
        if completed.returncode != 0:
            local.unlink(missing_ok=True)
            raise self._client_failure(completed, command)

    def close(self) -> None:
        """Nothing to close: each call is its own client process."""

    def _run(
        self, args: list[str], timeout: float, command: str
    ) -> subprocess.CompletedProcess[str]:
        return run_adb_client(
            [self._adb_path, *server_args(self.adb_server), "-s", self.serial, *args],
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


def server_args(server: AdbServerAddress) -> list[str]:
    """The stock client's options for `server`. For `localhost` the client starts the server
    when it is not running (as plain `adb` does); for any other host it never does."""
    return ["-H", server.host, "-P", str(server.port)]


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_adb_server(text: str, source: str = "--adb-server") -> AdbServerAddress:
    """`HOST:PORT`, `tcp:HOST:PORT` (ADB_SERVER_SOCKET's form), `tcp:PORT` or `PORT`."""
    spec = text.strip()
    if spec.startswith("tcp:"):
        spec = spec[4:]
    host, sep, port = spec.rpartition(":")
    if not sep:
        host, port = "localhost", spec
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise UsageError(
            f"{source} {text!r} is not an adb server address",
            hint="give HOST:PORT (or tcp:HOST:PORT), e.g. 192.168.1.7:5037; only TCP adb "
            "servers are supported",
        )
    return AdbServerAddress(host, int(port))


def resolve_adb_servers(
    named: Sequence[str], port: int | None, environ: Mapping[str, str]
) -> tuple[AdbServerAddress, tuple[AdbServerAddress, ...]]:
    """(the default server, the named ones) from --adb-server, --adb-server-port and the
    stock client's variables: ADB_SERVER_SOCKET (tcp:HOST:PORT) stands for --adb-server and
    ANDROID_ADB_SERVER_PORT for --adb-server-port when the command line names none."""
    servers = [parse_adb_server(text) for text in named]
    if servers and port is not None:
        servers.append(AdbServerAddress("localhost", port))
    if not servers and port is None and environ.get("ADB_SERVER_SOCKET"):
        servers = [parse_adb_server(environ["ADB_SERVER_SOCKET"], "ADB_SERVER_SOCKET")]
    if servers:
        unique = tuple(dict.fromkeys(servers))
        return unique[0], unique
    if port is None:
        text = environ.get("ANDROID_ADB_SERVER_PORT", "").strip()
        if text and not (text.isdigit() and 0 < int(text) < 65536):
            raise UsageError(f"ANDROID_ADB_SERVER_PORT={text!r} is not a port number")
        port = int(text) if text else DEFAULT_ADB_SERVER_PORT
    return AdbServerAddress("localhost", port), ()


def adb_server_running(server: AdbServerAddress) -> bool:
    """True when an adb server listens; asking it would otherwise start one (and grab USB)."""
    try:
        with socket.create_connection((server.host, server.port), timeout=0.5):
            return True
    except OSError:
        return False


def query_adb_server(
    server: AdbServerAddress, request: str, timeout: float = CONNECT_TIMEOUT_S
) -> str:
    """One host service of the adb server protocol (`host:devices-l`, `host:version`): the
    request as 4 hex digits of length + text, then OKAY + length + payload, or FAIL + reason."""
    payload = request.encode()
    try:
        with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
            sock.sendall(b"%04x" % len(payload) + payload)
            status = _read_exact(sock, 4)
            length = int(_read_exact(sock, 4), 16)
            answer = _read_exact(sock, length).decode("utf-8", "replace")
    except TimeoutError as error:
        raise DeviceTimeoutError(
            f"the adb server at {server} did not answer", command=request, timeout_s=timeout,
            hint="check that host and port are an adb server's (`adb -P PORT devices` there)",
        ) from error
    except (OSError, ValueError) as error:
        raise NoDeviceError(
            f"no adb server answers at {server}: {error}",
            hint="start it there (`adb -a -P PORT nodaemon server` listens on every address) "
            "or check --adb-server / ADB_SERVER_SOCKET",
        ) from error
    if status != b"OKAY":
        raise AdbError(f"the adb server at {server} refused the request", command=request,
                       serial=None, stderr=answer)
    return answer


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionResetError("the adb server closed the connection")
        data += chunk
    return data


def list_adb_server_devices(
    options: ConnectOptions, server: AdbServerAddress | None = None
) -> list[AdbDeviceEntry]:
    """`host:devices-l` of `server` (default: the options' own). A server at `localhost` that
    does not run is started first, as the stock client does; any other host's never is."""
    server = server or options.adb_server
    if server.host == "localhost" and not adb_server_running(server):
        run_adb_client([options.adb_path, *server_args(server), "start-server"],
                       CONNECT_TIMEOUT_S, serial=None, command="adb start-server")
    return parse_adb_devices(query_adb_server(server, "host:devices-l"))


def adb_client_connect(serial: str, options: ConnectOptions, announce: Announce) -> None:
    """`adb connect host:port` so the server knows a TCP device before we use it."""
    completed = run_adb_client(
        [options.adb_path, *server_args(options.adb_server), "connect", serial],
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
                f"the adb server at {options.adb_server} reports the device as "
                f"{state or 'missing'}",
                serial=serial,
                hint=f"check `adb {' '.join(server_args(options.adb_server))} devices`",
            )
        time.sleep(0.2)
