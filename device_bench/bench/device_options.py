"""The options every device command shares (--serial, --transport, adb servers, the key)
and the devices they name."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mobilize.device.adb_client import resolve_adb_servers
from mobilize.device.connect import DeviceTarget, choose_targets, discover
from mobilize.device.keys import default_key_path
from mobilize.device.transports import DEFAULT_AUTH_TIMEOUT_S, ConnectOptions, Transport


def add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serial",
        "-s",
        action="append",
        default=[],
        help="device serial (HOST:PORT for TCP); repeat for several devices",
    )
    parser.add_argument(
        "--transport",
        choices=[t.value for t in Transport],
        default="auto",
        help="auto: adb-shell, or the stock adb client when an adb server holds the USB interface",
    )
    parser.add_argument(
        "--adb-key",
        type=Path,
        default=None,
        help="ADB private key (default: ~/.android/adbkey, created if missing)",
    )
    parser.add_argument(
        "--auth-timeout",
        type=float,
        default=DEFAULT_AUTH_TIMEOUT_S,
        help='seconds to wait for "Allow" on the phone',
    )
    parser.add_argument(
        "--adb-server-port",
        type=int,
        default=None,
        help="port of the local stock adb server (default: $ANDROID_ADB_SERVER_PORT or 5037)",
    )
    parser.add_argument(
        "--adb-server",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="an adb server to use (another host's too); repeatable: --all-devices then "
        "means every device on every one (default: $ADB_SERVER_SOCKET, tcp:HOST:PORT)",
    )


def connect_options(args: argparse.Namespace) -> ConnectOptions:
    default, named = resolve_adb_servers(args.adb_server, args.adb_server_port, os.environ)
    return ConnectOptions(
        key_path=args.adb_key or default_key_path(),
        transport=Transport(args.transport),
        auth_timeout_s=args.auth_timeout,
        adb_server_port=default.port,
        adb_server_host=default.host,
        adb_servers=named,
    )


def device_targets(
    args: argparse.Namespace, options: ConnectOptions, all_devices: bool
) -> list[DeviceTarget]:
    """The DeviceTargets to use, each opened where it was found (named adb servers are asked
    even for --serial: they say which one has the device)."""
    available = [] if args.serial and not options.adb_servers else discover(options)
    return choose_targets(args.serial, os.environ.get("ANDROID_SERIAL"), available, options,
                          all_devices=all_devices)
