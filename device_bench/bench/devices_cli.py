"""`mobilize devices`: every phone adb can reach, described side by side."""

from __future__ import annotations

import argparse
import dataclasses
import os

from mobilize.bench import app_contract
from mobilize.bench.device_options import connect_options
from mobilize.bench.fleet import fan_out
from mobilize.console import announce, figures_console, write_json
from mobilize.device import ops
from mobilize.device.connect import READY, DeviceTarget, choose_targets, discover, open_device
from mobilize.device.device import Device
from mobilize.device.errors import EXIT_DEVICE_ERROR, DeviceError
from mobilize.report.tables import DeviceRow, devices_table


def cmd_devices(args: argparse.Namespace) -> int:
    options = connect_options(args)
    available = [] if args.serial and not options.adb_servers else discover(options)
    unusable = [] if args.serial else [entry for entry in available if entry.state != READY]
    env_serial = os.environ.get("ANDROID_SERIAL")
    targets = {} if unusable and not any(e.state == READY for e in available) else {
        target.key: target for target in choose_targets(
            args.serial, env_serial, available, options, all_devices=not env_serial)}
    outcomes = fan_out(list(targets), lambda key: _describe(targets[key]))
    if len(outcomes) == 1 and not unusable and isinstance(outcomes[0], DeviceError):
        raise outcomes[0]  # one device: its own message and hint say what to do
    rows = [(outcome if isinstance(outcome, DeviceRow) else _error_row(target.serial, outcome),
             target.adb_server) for target, outcome in zip(targets.values(), outcomes, strict=True)]
    rows += [(DeviceRow(e.serial, *[None] * 10, error=_unusable_state(e.state)),
              e.details.get("adb_server")) for e in unusable]
    # With named adb servers (a lab) each serial says which server lists it.
    shown = [dataclasses.replace(row, serial=f"{row.serial}\n@{server}")
             if server and options.adb_servers else row for row, server in rows]
    figures_console(args.json).print(devices_table(shown))
    if args.json:
        write_json(args.json, {"devices": [{**dataclasses.asdict(row), "adb_server": server}
                                           for row, server in rows]})
    return 0 if all(row.error is None for row, _ in rows) else EXIT_DEVICE_ERROR


def _describe(target: DeviceTarget) -> DeviceRow | DeviceError:
    try:
        device = open_device(target.serial, target.options, announce)
    except DeviceError as error:
        return error
    try:
        return describe_device(device)
    except DeviceError as error:
        return error
    finally:
        device.close()


def _unusable_state(state: str) -> str:
    """adb's state for a device it lists but cannot use, with what usually clears it."""
    if state == "unauthorized":
        return 'unauthorized: tap "Allow" on the phone\'s USB debugging prompt'
    if state in ("offline", "authorizing", "connecting"):
        return f"{state}: adb is still connecting; run again in a few seconds"
    return f"{state} (see `adb devices`)"


def _error_row(serial: str, error: DeviceError) -> DeviceRow:
    return DeviceRow(serial, *[None] * 10, error=error.message.splitlines()[0])


def describe_device(device: Device) -> DeviceRow:
    info = ops.device_info(device)
    thermal = ops.thermal_status(device)
    app = ops.package_info(device)
    return DeviceRow(
        serial=device.serial,
        model=info.model,
        board=info.board,
        soc=info.soc,
        abi=",".join(info.abis) or info.abi,
        android=info.android_version,
        sdk=info.sdk,
        gpu=info.gpu_renderer,
        battery_c=ops.battery(device).temperature_c,
        thermal=thermal.label if thermal is not None else None,
        app=None if app is None else f"{app.version_name} ({app.version_code})",
        app_outdated=app is not None and app.version_code != app_contract.APP_VERSION_CODE,
    )
