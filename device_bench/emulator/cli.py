"""`mobilize emulator`: run an emulated Android device on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import threading
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from mobilize.emulator.faults import FAULT_NAMES, Faults
from mobilize.emulator.testing import start_emulator
from mobilize.errors import MobilizeError, UsageError

DEFAULT_PORT = 5555
console = Console(highlight=False)


def default_root(port: int) -> Path:
    return Path.home() / ".local" / "share" / "mobilize" / f"emulator-{port}"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run an emulated Android device that speaks ADB on 127.0.0.1 (no phone needed)",
        description=(
            "Run an emulated Android device on the loopback interface. The stock adb client "
            "and adb-shell connect to it like to a phone in `adb tcpip` mode; it runs the "
            "bundled benchmark app's measurements on this machine's CPU. Blocks until Ctrl-C."
        ),
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="TCP port on 127.0.0.1 (default 5555; 0 picks a free one)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="device profile JSON (default: the bundled generic arm64 phone)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        help="folder holding the device's file system "
        "(default: ~/.local/share/mobilize/emulator-PORT)",
    )
    parser.add_argument(
        "--accept-new-keys",
        action="store_true",
        help="trust a host's new RSA key when it offers one (a person tapping 'Allow'); "
        "otherwise such a host stays unauthorized",
    )
    parser.add_argument(
        "--trusted-keys",
        type=Path,
        help="file of trusted adbkey.pub lines (default: ROOT/data/misc/adb/adb_keys)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help=f"start with a fault, e.g. disk_full, drop_after_bytes=1000000, "
        f"thermal_during_run=severe (repeatable; names: {', '.join(FAULT_NAMES)})",
    )
    parser.set_defaults(handler=run_emulator)


def run_emulator(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(
            f"port {args.port} is not a TCP port", hint="use a number from 1024 to 65535"
        )
    root = args.root or default_root(args.port)
    faults = Faults()
    for spec in args.fault:
        try:
            faults.apply_text(spec)
        except ValueError as error:
            raise UsageError(
                f"bad --fault {spec!r}: {error}", hint="see mobilize emulator --help"
            ) from error
    try:
        handle = start_emulator(
            root,
            port=args.port,
            accept_new_keys=args.accept_new_keys,
            trusted_keys_file=args.trusted_keys,
            profile=args.profile,
            faults=faults,
            notice=lambda message: console.print(f"[yellow]device:[/] {escape(message)}"),
        )
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise MobilizeError(
                f"port {args.port} on 127.0.0.1 is already in use",
                hint="stop what listens there (another emulator?) or pass --port N",
            ) from error
        raise MobilizeError(
            f"cannot start the emulated device: {error}", hint="check --root and --port"
        ) from error
    device = handle.device
    console.print(
        f"Emulated device [bold]{escape(device.profile.model)}[/] listening on {handle.serial}"
    )
    console.print(f"  serial:      {handle.serial}")
    console.print(f"  file system: {handle.root}")
    console.print(f"  connect:     adb connect {handle.serial}")
    console.print(f"               adb -s {handle.serial} shell getprop ro.product.model")
    if args.accept_new_keys:
        console.print(
            "  new keys:    accepted (--accept-new-keys) and kept in "
            + str(device.trusted_keys.path)
        )
    else:
        console.print(
            "  new keys:    refused; a host whose key is not in "
            f"{device.trusted_keys.path} stays unauthorized "
            "(start with --accept-new-keys to allow it)"
        )
    if args.fault:
        console.print(f"  faults:      {escape(', '.join(args.fault))}")
    console.print("Press Ctrl-C to stop.")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        console.print("stopping the emulated device")
    finally:
        handle.stop()
    return 0
