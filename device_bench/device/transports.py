"""Device transports: adb-shell over USB or TCP, and Debian's stock `adb` client.

All three implement mobilize.device.device.Device. adb-shell talks straight to the phone's
adbd (no adb server needed); the stock client goes through an adb server, which is the way
to reach a phone whose USB interface an adb server already holds (LIBUSB_ERROR_BUSY).

Exit codes: adbd's legacy shell service merges stdout and stderr and drops the exit code,
so every command line gets `; echo MARKER$?` appended and the code is read back from the
last line — the same on every transport.
"""

from __future__ import annotations

import enum
import select
import shlex
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from adb_shell import constants as adb_constants
from adb_shell import exceptions as adb_exc
from adb_shell.adb_device import AdbDevice, _AdbIOManager
from adb_shell.adb_message import AdbMessage
from adb_shell.transport.base_transport import BaseTransport
from adb_shell.transport.tcp_transport import TcpTransport

from mobilize.device.device import Device, ShellResult
from mobilize.device.errors import (
    AdbError,
    DeviceError,
    DeviceLostError,
    DeviceTimeoutError,
    NoDeviceError,
    UnauthorizedError,
    UsbBusyError,
)
from mobilize.device.keys import load_or_create_signer

EXIT_MARKER = "__mobilize_exit_code="
DEFAULT_ADB_PORT = 5555
DEFAULT_ADB_SERVER_PORT = 5037
# A person needs time to unlock the phone and tap "Allow" on the first connection.
DEFAULT_AUTH_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
SMALL_MESSAGE = 64 * 1024

Announce = Callable[[str], None]


class Transport(enum.Enum):
    AUTO = "auto"
    USB = "usb"
    TCP = "tcp"
    ADB = "adb"


@dataclass(frozen=True)
class AdbServerAddress:
    """Where an adb server listens: the stock client's -H/-P, ADB_SERVER_SOCKET's tcp:HOST:PORT."""

    host: str = "localhost"
    port: int = DEFAULT_ADB_SERVER_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ConnectOptions:
    """`adb_server_host/port`: the adb server a device is opened through; `adb_servers`:
    those named with --adb-server, all asked for devices (none: the local one)."""

    key_path: Path
    transport: Transport = Transport.AUTO
    auth_timeout_s: float = DEFAULT_AUTH_TIMEOUT_S
    adb_path: str = "adb"
    adb_server_port: int = DEFAULT_ADB_SERVER_PORT
    adb_server_host: str = "localhost"
    adb_servers: tuple[AdbServerAddress, ...] = ()

    @property
    def adb_server(self) -> AdbServerAddress:
        return AdbServerAddress(self.adb_server_host, self.adb_server_port)

    def through(self, server: AdbServerAddress) -> ConnectOptions:
        """These options for a device found on `server`: opened through it, by the client."""
        return replace(
            self, transport=Transport.ADB, adb_server_host=server.host, adb_server_port=server.port
        )


def is_tcp_serial(serial: str) -> bool:
    """`host:port` (127.0.0.1:5555, phone.local:5555) names a device reached over TCP."""
    host, sep, port = serial.rpartition(":")
    return bool(sep and host and port.isdigit())


def split_tcp_serial(serial: str) -> tuple[str, int]:
    host, _, port = serial.rpartition(":")
    return host, int(port)


def wrap_with_exit_marker(command: str) -> str:
    return f"{command}; echo {EXIT_MARKER}$?"


def split_exit_marker(command: str, output: str) -> ShellResult:
    """Separate the command's own output from the exit-code line appended to it."""
    head, sep, tail = output.rpartition(EXIT_MARKER)
    if not sep:
        # No marker: the connection closed before the command finished.
        return ShellResult(command=command, exit_code=255, stdout=output)
    code_text = tail.strip().splitlines()[0] if tail.strip() else ""
    exit_code = int(code_text) if code_text.isdigit() else 255
    return ShellResult(command=command, exit_code=exit_code, stdout=head)


# --------------------------------------------------------------------------- adb-shell


class _SendAllTcpTransport(TcpTransport):
    """adb-shell's TCP transport, but writes with sendall.

    The stock transport calls socket.send once per message, which may write only part of a
    large WRTE packet and corrupt the stream; sendall writes all of it and lets adb-shell
    use big sync chunks at full speed.
    """

    def connect(self, transport_timeout_s: float | None) -> None:
        super().connect(transport_timeout_s)
        # ADB is request/answer with small messages: without TCP_NODELAY, Nagle's algorithm
        # meets the peer's delayed ACK and every shell command waited ~40 ms.
        self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        # The stock transport returns b"" at end of stream and adb-shell then spins until its
        # read timeout; a closed connection is a lost device, and should say so at once.
        connection = self._connection
        if connection is None:
            raise ConnectionResetError("the connection is closed")
        readable, _, _ = select.select([connection], [], [], transport_timeout_s)
        if not readable:
            raise adb_exc.TcpTimeoutException(
                f"reading from {self._host}:{self._port} timed out ({transport_timeout_s} s)"
            )
        data = connection.recv(numbytes)
        if not data:
            raise ConnectionResetError(f"{self._host}:{self._port} closed the connection")
        return data

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        connection = self._connection
        if connection is None:
            raise adb_exc.TcpTimeoutException("the connection is closed")
        connection.settimeout(transport_timeout_s)
        try:
            connection.sendall(data)
        except TimeoutError as error:
            raise adb_exc.TcpTimeoutException(
                f"sending to {self._host}:{self._port} timed out"
            ) from error
        return len(data)


def _fast_checksum(data: bytes | bytearray) -> int:
    """ADB's payload checksum (the byte sum), with numpy: adb-shell's sum() over a 1 MiB
    payload costs ~5 ms and was most of a push's time."""
    if not data:
        return 0
    return int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


class _FastChecksumIOManager(_AdbIOManager):
    """adb-shell's I/O manager, sending each message with the numpy checksum above.

    The wire bytes are identical to adb-shell's own (same header layout, same checksum);
    adb-shell announces protocol version 0x01000000, so the device does verify them.
    """

    def _send(self, msg: AdbMessage, adb_info: object) -> None:
        data = msg.data
        header = struct.pack(
            adb_constants.MESSAGE_FORMAT,
            msg.command,
            msg.arg0,
            msg.arg1,
            len(data),
            _fast_checksum(data),
            msg.magic,
        )
        timeout = adb_info.transport_timeout_s  # type: ignore[attr-defined]
        if len(data) <= SMALL_MESSAGE:
            # One write for header and payload: one TCP segment, one USB transfer less.
            self._transport.bulk_write(header + bytes(data), timeout)
            return
        self._transport.bulk_write(header, timeout)
        self._transport.bulk_write(data, timeout)


def _new_adb_device(transport: BaseTransport) -> AdbDevice:
    adb = AdbDevice(transport, default_transport_timeout_s=CONNECT_TIMEOUT_S)
    # adb-shell 0.4.4 (pinned) keeps its I/O in this private attribute; swapping the manager
    # is the one place where its push speed can be changed without patching the library.
    adb._io_manager = _FastChecksumIOManager(transport)
    return adb


class AdbShellDevice:
    """A device reached with adb-shell (USB or TCP), no adb server involved."""

    def __init__(self, serial: str, adb: AdbDevice) -> None:
        self.serial = serial
        self._adb = adb

    def shell(self, command: str, timeout: float) -> ShellResult:
        try:
            output = self._adb.shell(
                wrap_with_exit_marker(command),
                transport_timeout_s=timeout,
                read_timeout_s=timeout,
                timeout_s=timeout,
            )
        except Exception as error:  # noqa: BLE001 - translated into a typed error below
            raise _translate(error, self.serial, command, timeout) from error
        return split_exit_marker(command, output)

    def push(self, local: Path, remote: str, timeout: float) -> None:
        command = f"push {local} {remote}"
        try:
            self._adb.push(str(local), remote, transport_timeout_s=timeout, read_timeout_s=timeout)
        except Exception as error:  # noqa: BLE001
            raise _translate(error, self.serial, command, timeout) from error

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        command = f"pull {remote} {local}"
        try:
            self._adb.pull(remote, str(local), transport_timeout_s=timeout, read_timeout_s=timeout)
        except Exception as error:  # noqa: BLE001
            local.unlink(missing_ok=True)  # never leave half a file behind
            raise _translate(error, self.serial, command, timeout) from error

    def close(self) -> None:
        try:
            self._adb.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not hide the real error
            pass


def connect_tcp(serial: str, options: ConnectOptions, announce: Announce) -> AdbShellDevice:
    host, port = split_tcp_serial(serial)
    adb = _new_adb_device(_SendAllTcpTransport(host, port))
    _connect(adb, serial, options, announce)
    return AdbShellDevice(serial, adb)


def connect_usb(serial: str | None, options: ConnectOptions, announce: Announce) -> AdbShellDevice:
    try:
        from adb_shell.adb_device import AdbDeviceUsb
    except ImportError as error:  # pragma: no cover - the usb extra is a dependency
        raise DeviceError(
            "adb-shell was installed without USB support", hint="pip install 'adb-shell[usb]'"
        ) from error
    try:
        usb = AdbDeviceUsb(serial=serial, default_transport_timeout_s=CONNECT_TIMEOUT_S)
        adb = _new_adb_device(usb._io_manager._transport)
    except adb_exc.UsbDeviceNotFoundError as error:
        raise NoDeviceError(
            f"no Android device found on USB{f' with serial {serial}' if serial else ''}",
            hint="plug the phone in, enable USB debugging in Developer options, "
            "or reach it over TCP with --serial HOST:PORT",
        ) from error
    except Exception as error:  # noqa: BLE001 - libusb missing or no permission
        raise _usb_error(error, serial) from error
    _connect(adb, serial or "usb", options, announce)
    return AdbShellDevice(serial or "usb", adb)


def _connect(adb: AdbDevice, serial: str, options: ConnectOptions, announce: Announce) -> None:
    signer = load_or_create_signer(options.key_path)
    asked = []

    def on_auth_prompt(_manager: object) -> None:
        asked.append(True)
        announce(
            f"[{serial}] the device does not know this computer's key yet: unlock it and tap "
            f'"Allow" on the USB debugging prompt (waiting up to {options.auth_timeout_s:g} s)'
        )

    try:
        adb.connect(
            rsa_keys=[signer],
            transport_timeout_s=CONNECT_TIMEOUT_S,
            auth_timeout_s=options.auth_timeout_s,
            read_timeout_s=max(CONNECT_TIMEOUT_S, options.auth_timeout_s),
            auth_callback=on_auth_prompt,
        )
    except Exception as error:  # noqa: BLE001
        adb.close()
        if asked or isinstance(error, adb_exc.DeviceAuthError):
            raise UnauthorizedError(
                f"the device did not authorize this computer's key {options.key_path}",
                hint='unlock the phone, tap "Allow" on the USB debugging prompt and run again '
                "(or raise --auth-timeout); if no prompt shows, revoke USB debugging "
                "authorizations in Developer options and reconnect",
                serial=serial,
            ) from error
        if _is_usb_busy(error):
            raise _usb_error(error, serial) from error
        if isinstance(error, ConnectionRefusedError | socket.gaierror):
            raise NoDeviceError(
                f"nothing answers at {serial}: {error}",
                hint="check the address; a phone listens on TCP after `adb tcpip 5555` "
                "(over USB), the emulated device after `mobilize emulator --port PORT`",
                serial=serial,
            ) from error
        raise _translate(error, serial, "connect", CONNECT_TIMEOUT_S) from error


def _is_usb_busy(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error} {getattr(error, 'usb_error', '')}"
    return "LIBUSB_ERROR_BUSY" in text or "USBErrorBusy" in text


def _usb_error(error: BaseException, serial: str | None) -> DeviceError:
    if _is_usb_busy(error):
        return UsbBusyError(
            "the phone's USB interface is held by another program (LIBUSB_ERROR_BUSY), "
            "usually a running adb server",
            hint="run `adb kill-server` and try again, or use the server with --transport adb",
            serial=serial,
        )
    return DeviceError(
        f"cannot open the USB device: {error}",
        hint="check the udev rules / permissions for the phone (or run with --transport adb)",
        serial=serial,
    )


def _translate(error: BaseException, serial: str, command: str, timeout: float) -> DeviceError:
    """adb-shell and socket exceptions as the harness's typed errors."""
    if isinstance(error, DeviceError):
        return error
    if isinstance(error, adb_exc.TcpTimeoutException | adb_exc.AdbTimeoutError | TimeoutError):
        return DeviceTimeoutError(
            f"the device did not answer: {error}",
            hint="check the connection; a phone that stays silent may need a reconnect",
            serial=serial,
            command=command,
            timeout_s=timeout,
        )
    if isinstance(error, adb_exc.PushFailedError | adb_exc.AdbCommandFailureException):
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes | bytearray):
            detail = detail.decode("utf-8", "replace")
        return AdbError(
            "the device refused the file transfer",
            command=command,
            serial=serial,
            stderr=str(detail),
            hint="check free space on the device (`adb shell df /data`) and the remote path",
        )
    if _is_usb_busy(error):
        return _usb_error(error, serial)
    if isinstance(
        error,
        ConnectionError
        | OSError
        | adb_exc.AdbConnectionError
        | adb_exc.InvalidResponseError
        | adb_exc.InvalidChecksumError
        | adb_exc.InvalidCommandError
        | adb_exc.UsbReadFailedError
        | adb_exc.UsbWriteFailedError,
    ):
        return DeviceLostError(
            f"lost the connection to the device: {_connection_reason(error)}",
            hint="check the cable or network and run again (--retries N retries a lost push)",
            serial=serial,
        )
    return DeviceError(f"device call failed: {type(error).__name__}: {error}", serial=serial)


def _connection_reason(error: BaseException) -> str:
    """What went wrong in words, not the Python exception's class name."""
    reasons = {ConnectionResetError: "the device reset the connection",
               ConnectionAbortedError: "the connection was aborted",
               BrokenPipeError: "the device closed the connection while we were sending",
               ConnectionRefusedError: "the device refused the connection"}
    plain = next((text for kind, text in reasons.items() if isinstance(error, kind)), None)
    detail = str(error).strip()
    if plain:
        return f"{plain} ({detail})" if detail and detail not in plain else plain
    return detail or "the connection ended without a reason"


# --------------------------------------------------------------------------- stock adb


def list_usb_serials() -> list[str]:
    """Serials of ADB interfaces on USB (empty when libusb is missing or nothing is attached)."""
    try:
        from adb_shell.transport.usb_transport import UsbTransport

        return [transport.serial_number for transport in UsbTransport.find_all_adb_devices()]
    except Exception:  # noqa: BLE001 - no libusb, no permission: nothing we can list
        return []


def quote(argument: str) -> str:
    """Quote one remote argument for the device's POSIX shell."""
    return shlex.quote(argument)


__all__ = ["AdbServerAddress", "AdbShellDevice", "ConnectOptions", "Device", "Transport"]
