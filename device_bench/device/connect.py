"""Which device(s) to use and how to open them.

Choice: --serial, else ANDROID_SERIAL, else the only device attached; several devices and
none chosen is an error that lists them. A device is opened by where it was found: one an
adb server lists goes through that server (the stock client), whatever its serial looks like
(emulator-5554, a USB serial, HOST:PORT); one found on USB goes through adb-shell. A serial
given without discovery is opened by its spelling: HOST:PORT means TCP, anything else USB
(or a running local adb server that lists it).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from mobilize.device.adb_client import (
    AdbClientDevice,
    adb_client_connect,
    adb_server_running,
    is_loopback_host,
    list_adb_server_devices,
    parse_adb_server,
)
from mobilize.device.device import Device
from mobilize.device.errors import DeviceChoiceError, DeviceError, NoDeviceError, UsbBusyError
from mobilize.device.parse import AdbDeviceEntry
from mobilize.device.transports import (
    AdbServerAddress,
    Announce,
    ConnectOptions,
    Transport,
    connect_tcp,
    connect_usb,
    is_tcp_serial,
    list_usb_serials,
    split_tcp_serial,
)

READY = "device"
SERVER_DETAIL = "adb_server"  # AdbDeviceEntry.details key: the server that lists the device
ALIASES_DETAIL = "aliases"  # the same device's other serials on that server (emulator-5554)
_EMULATOR = re.compile(r"emulator-(\d+)")


@dataclass(frozen=True)
class DeviceTarget:
    """A chosen device and the options that open it where it was found."""

    serial: str
    options: ConnectOptions
    adb_server: str | None = None  # "host:port" of the adb server that lists it, else None

    @property
    def key(self) -> str:
        return f"{self.serial} @ {self.adb_server}" if self.adb_server else self.serial


def discover(options: ConnectOptions) -> list[AdbDeviceEntry]:
    """Devices attached now: ADB interfaces on USB, and those the adb servers list.

    Servers named with --adb-server are all asked; the local one only when it already runs
    (or --transport adb says to use it): starting one would claim every phone's USB
    interface. One device listed twice (emulator-5554 and 127.0.0.1:5555 are one adbd) is
    kept once; each server entry carries the server in details["adb_server"].
    """
    found: dict[tuple[str, str], AdbDeviceEntry] = {}
    if options.transport in (Transport.AUTO, Transport.USB):
        for serial in list_usb_serials():
            found[device_identity(serial, None)] = AdbDeviceEntry(serial, READY, {"via": "usb"})
    for server in _servers_to_ask(options):
        for entry in list_adb_server_devices(options, server):
            listed = AdbDeviceEntry(
                entry.serial, entry.state, {**entry.details, SERVER_DETAIL: str(server)}
            )
            key = device_identity(entry.serial, server)
            old = found.get(key)
            # The server holds a USB device that libusb also enumerates; among two server
            # entries of one device the first usable one stays, the other's serial an alias.
            if old is None or SERVER_DETAIL not in old.details:
                found[key] = listed
            elif old.serial != listed.serial:
                better = old.state != READY and listed.state == READY
                keep, drop = (listed, old) if better else (old, listed)
                names = [*_aliases(drop), drop.serial, *_aliases(keep)]
                keep.details[ALIASES_DETAIL] = ",".join(dict.fromkeys(names))
                found[key] = keep
    return list(found.values())


def _aliases(entry: AdbDeviceEntry) -> list[str]:
    return [name for name in entry.details.get(ALIASES_DETAIL, "").split(",") if name]


def _servers_to_ask(options: ConnectOptions) -> tuple[AdbServerAddress, ...]:
    if options.transport in (Transport.USB, Transport.TCP):
        return ()
    if options.adb_servers:
        return options.adb_servers
    if options.transport is Transport.ADB or (
        shutil.which(options.adb_path) and adb_server_running(options.adb_server)
    ):
        return (options.adb_server,)
    return ()


def device_identity(serial: str, server: AdbServerAddress | None) -> tuple[str, str]:
    """(machine, device) naming one adbd: emulator-N is the server machine's port N+1, and
    a loopback HOST:PORT is that machine's too; a network HOST:PORT is the same everywhere."""
    machine = "local" if server is None or is_loopback_host(server.host) else server.host.lower()
    emulator = _EMULATOR.fullmatch(serial)
    if emulator:
        return machine, f"loopback:{int(emulator[1]) + 1}"
    if is_tcp_serial(serial):
        host, port = split_tcp_serial(serial)
        if is_loopback_host(host):
            return machine, f"loopback:{port}"
        return "network", f"{host.lower()}:{port}"
    return machine, serial


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
    listing = "\n".join(
        f"  {entry.serial}  ({entry.state}{_on_server(entry)})" for entry in available
    )
    raise DeviceChoiceError(
        f"{len(ready)} devices are attached and none was chosen:\n{listing}",
        hint="choose one with --serial SERIAL (or set ANDROID_SERIAL), or use --all-devices",
    )


def choose_targets(
    requested: Sequence[str],
    env_serial: str | None,
    available: Sequence[AdbDeviceEntry],
    options: ConnectOptions,
    *,
    all_devices: bool = False,
) -> list[DeviceTarget]:
    """choose_serials, each device with the options that open it where it was found
    (pure: no device calls). A serial no server lists is opened by its spelling, a HOST:PORT
    through the first named adb server (which `adb connect`s it)."""
    serials = choose_serials(requested, env_serial, available, all_devices=all_devices)
    if all_devices and not requested:
        return [_target(entry, options) for entry in available if entry.state == READY]
    named = options.adb_servers if options.transport in (Transport.AUTO, Transport.ADB) else ()
    targets = []
    for serial in serials:
        listed = [entry for entry in available if serial in (entry.serial, *_aliases(entry))]
        usable = [entry for entry in listed if entry.state == READY] or listed
        if len(usable) > 1:
            servers = ", ".join(entry.details.get(SERVER_DETAIL, "USB") for entry in usable)
            raise DeviceChoiceError(
                f"{serial} is listed by several adb servers ({servers})",
                hint="name the one to use with --adb-server HOST:PORT",
            )
        if usable:
            targets.append(_target(usable[0], options, serial))
        elif named and is_tcp_serial(serial):
            targets.append(DeviceTarget(serial, options.through(named[0]), str(named[0])))
        elif named:
            names = ", ".join(str(server) for server in named)
            raise NoDeviceError(
                f"no adb server lists {serial} ({names})",
                hint="see `mobilize devices --adb-server HOST:PORT`",
                serial=serial,
            )
        else:  # by its spelling; --transport adb: through the one server
            server = str(options.adb_server) if options.transport is Transport.ADB else None
            targets.append(DeviceTarget(serial, options, server))
    return targets


def _target(
    entry: AdbDeviceEntry, options: ConnectOptions, serial: str | None = None
) -> DeviceTarget:
    server = entry.details.get(SERVER_DETAIL)
    serial = serial or entry.serial
    if server is None:
        return DeviceTarget(serial, options)
    return DeviceTarget(serial, options.through(parse_adb_server(server)), server)


def _on_server(entry: AdbDeviceEntry) -> str:
    server = entry.details.get(SERVER_DETAIL)
    return f", adb server {server}" if server else ""


def _no_device(available: Sequence[AdbDeviceEntry]) -> NoDeviceError:
    not_ready = [f"  {entry.serial}  ({entry.state}{_on_server(entry)})" for entry in available]
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
    except NoDeviceError:
        if options.transport is Transport.USB or not _server_lists(serial, options):
            raise
        announce(f"[{serial}] not on USB, but the adb server at {options.adb_server} lists it: "
                 "using the stock adb client")
        return _open_with_client(serial, options, announce)


def _server_lists(serial: str, options: ConnectOptions) -> bool:
    """Whether the options' adb server, when it runs, lists `serial` (emulator-5554, ...)."""
    if not shutil.which(options.adb_path) or not adb_server_running(options.adb_server):
        return False
    try:
        return any(entry.serial == serial for entry in list_adb_server_devices(options))
    except DeviceError:
        return False


def _open_with_client(serial: str, options: ConnectOptions, announce: Announce) -> Device:
    if is_tcp_serial(serial):
        adb_client_connect(serial, options, announce)
    return AdbClientDevice(
        serial, options.adb_path, options.adb_server_port, options.adb_server_host
    )
