"""Which device(s) to use and how to open them.

Choice: --serial, else ANDROID_SERIAL, else the only device attached; several devices and
none chosen is an error that lists them. A serial like 127.0.0.1:5555 means TCP.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from mobilize.device.adb_client import (
    AdbClientDevice,
    adb_client_connect,
    adb_server_running,
    list_adb_server_devices,
)
from mobilize.device.device import Device
from mobilize.device.errors import DeviceChoiceError, NoDeviceError, UsbBusyError
from mobilize.device.parse import AdbDeviceEntry
from mobilize.device.transports import (
    Announce,
    ConnectOptions,
    Transport,
    connect_tcp,
    connect_usb,
    is_tcp_serial,
    list_usb_serials,
)

READY = "device"


def discover(options: ConnectOptions) -> list[AdbDeviceEntry]:
    """Devices attached now: ADB interfaces on USB, and those a running adb server knows.

    An adb server is asked only when it already runs (or --transport adb says to use it):
    starting one would claim every phone's USB interface.
    """
    entries: dict[str, AdbDeviceEntry] = {}
    if options.transport in (Transport.AUTO, Transport.USB):
        for serial in list_usb_serials():
            entries[serial] = AdbDeviceEntry(serial, READY, {"via": "usb"})
    wants_server = options.transport is Transport.ADB or (
        options.transport is Transport.AUTO and adb_server_running(options.adb_server_port)
    )
    if wants_server and shutil.which(options.adb_path):
        for entry in list_adb_server_devices(options):
            entries.setdefault(entry.serial, entry)
    return list(entries.values())


def choose_serials(
    requested: Sequence[str],
    env_serial: str | None,
    available: Sequence[AdbDeviceEntry],
    *,
    all_devices: bool = False,
) -> list[str]:
    """The serials to use, by the rules in this module's docstring (pure: no device calls)."""
    if requested:
        return list(dict.fromkeys(requested))
    ready = [entry.serial for entry in available if entry.state == READY]
    if all_devices:
        if not ready:
            raise _no_device(available)
        return ready
    if env_serial:
        return [env_serial]
    if len(ready) == 1:
        return ready
    if not ready:
        raise _no_device(available)
    listing = "\n".join(f"  {entry.serial}  ({entry.state})" for entry in available)
    raise DeviceChoiceError(
        f"{len(ready)} devices are attached and none was chosen:\n{listing}",
        hint="choose one with --serial SERIAL (or set ANDROID_SERIAL), or use --all-devices",
    )


def _no_device(available: Sequence[AdbDeviceEntry]) -> NoDeviceError:
    not_ready = [f"  {entry.serial}  ({entry.state})" for entry in available]
    detail = ("\nseen but not usable:\n" + "\n".join(not_ready)) if not_ready else ""
    return NoDeviceError(
        f"no Android device is attached{detail}",
        hint="plug in a phone with USB debugging enabled, pass --serial HOST:PORT for a "
        "device over TCP, or start the emulated device with `mobilize emulator`",
    )


def open_device(serial: str, options: ConnectOptions, announce: Announce) -> Device:
    """Connect to one device with the transport --transport asks for."""
    tcp = is_tcp_serial(serial)
    if options.transport is Transport.ADB:
        return _open_with_client(serial, options, announce)
    if options.transport is Transport.TCP or (options.transport is Transport.AUTO and tcp):
        if not tcp:
            raise DeviceChoiceError(
                f"--transport tcp needs a serial of the form HOST:PORT, not {serial!r}",
                hint="pass --serial 192.168.1.20:5555 (after `adb tcpip 5555`) "
                "or use --transport usb",
            )
        return connect_tcp(serial, options, announce)
    try:
        return connect_usb(serial, options, announce)
    except UsbBusyError:
        if options.transport is Transport.USB or not shutil.which(options.adb_path):
            raise
        announce(f"[{serial}] an adb server holds the USB interface: using the stock adb client")
        return _open_with_client(serial, options, announce)


def _open_with_client(serial: str, options: ConnectOptions, announce: Announce) -> Device:
    if is_tcp_serial(serial):
        adb_client_connect(serial, options, announce)
    return AdbClientDevice(serial, options.adb_path, options.adb_server_port)
