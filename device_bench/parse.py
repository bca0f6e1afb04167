"""Pure parsers: device shell output in, typed records out.

Every function here takes the text a command printed and returns a frozen record; none
talks to a device, so each is tested on captured output (tests/device_bench/test_parse.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from device_bench.app_contract import ThermalStatus

_GETPROP_LINE = re.compile(r"^\[(?P<key>[^\]]+)\]:\s*\[(?P<value>.*)\]\s*$")


@dataclass(frozen=True)
class BatteryInfo:
    level: int | None
    temperature_c: float | None
    powered: bool


@dataclass(frozen=True)
class MemInfo:
    """Figures of `dumpsys meminfo PKG`, in kB; all None when the process is not running."""

    pss_kb: int | None
    rss_kb: int | None
    native_heap_pss_kb: int | None
    pid: int | None


@dataclass(frozen=True)
class PackageInfo:
    package: str
    version_code: int | None
    version_name: str | None


@dataclass(frozen=True)
class AdbDeviceEntry:
    """One line of `adb devices -l`."""

    serial: str
    state: str  # device, unauthorized, offline, ...
    details: dict[str, str]


@dataclass(frozen=True)
class AmStartResult:
    ok: bool
    error: str | None
    total_time_ms: int | None


def parse_getprop(text: str) -> dict[str, str]:
    """`getprop` with no argument: lines like `[ro.product.model]: [Pixel 7]`."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        match = _GETPROP_LINE.match(line.strip())
        if match:
            props[match["key"]] = match["value"]
    return props


def parse_battery(text: str) -> BatteryInfo:
    """`dumpsys battery`: temperature is printed in tenths of a degree Celsius."""
    fields = _colon_fields(text)
    temperature = _int_or_none(fields.get("temperature"))
    powered = any(
        fields.get(name, "").lower() == "true"
        for name in ("AC powered", "USB powered", "Wireless powered", "Dock powered")
    )
    return BatteryInfo(
        level=_int_or_none(fields.get("level")),
        temperature_c=None if temperature is None else temperature / 10.0,
        powered=powered,
    )


def parse_thermal_status(text: str) -> ThermalStatus | None:
    """`dumpsys thermalservice`: the line `Thermal Status: N`."""
    match = re.search(r"^\s*Thermal Status:\s*(\d+)", text, re.MULTILINE)
    if not match:
        return None
    try:
        return ThermalStatus(int(match.group(1)))
    except ValueError:
        return None


def parse_meminfo(text: str) -> MemInfo:
    """`dumpsys meminfo PKG`: total PSS, total RSS and the native heap's PSS, in kB."""
    if re.search(r"No process found", text):
        return MemInfo(None, None, None, None)
    pid_match = re.search(r"MEMINFO in pid (\d+)", text)
    pss = _first_int(r"TOTAL PSS:\s*(\d+)", text)
    if pss is None:
        # Older layouts: the table's TOTAL row starts with the PSS total.
        pss = _first_int(r"^\s*TOTAL\s+(\d+)", text)
    rss = _first_int(r"TOTAL RSS:\s*(\d+)", text)
    native = _first_int(r"^\s*Native Heap\s+(\d+)", text)
    return MemInfo(
        pss_kb=pss,
        rss_kb=rss,
        native_heap_pss_kb=native,
        pid=int(pid_match.group(1)) if pid_match else None,
    )


def parse_package_info(package: str, text: str) -> PackageInfo | None:
    """`dumpsys package PKG`: None when the package is not installed."""
    if re.search(r"Unable to find package", text) or "versionCode=" not in text:
        return None
    code = _first_int(r"versionCode=(\d+)", text)
    name_match = re.search(r"versionName=(\S+)", text)
    return PackageInfo(package, code, name_match.group(1) if name_match else None)


def parse_pm_path(text: str) -> list[str]:
    """`pm path PKG`: one `package:/path/base.apk` per split."""
    return [
        line.strip()[len("package:") :]
        for line in text.splitlines()
        if line.strip().startswith("package:")
    ]


def parse_sha256sum(text: str) -> str | None:
    """`sha256sum FILE`: the hex digest at the start of the line."""
    match = re.match(r"\s*([0-9a-fA-F]{64})\b", text)
    return match.group(1).lower() if match else None


def parse_adb_devices(text: str) -> list[AdbDeviceEntry]:
    """`adb devices -l`: serial, state and key:value details for each device line."""
    entries: list[AdbDeviceEntry] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        details = dict(part.split(":", 1) for part in parts[2:] if ":" in part)
        entries.append(AdbDeviceEntry(parts[0], parts[1], details))
    return entries


def parse_am_start(text: str) -> AmStartResult:
    """`am start -W`: `Status: ok` and `TotalTime: N`, or an `Error...` line."""
    error_lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip().startswith(("Error", "Exception"))
    ]
    status = re.search(r"^\s*Status:\s*(\S+)", text, re.MULTILINE)
    error: str | None = None
    if error_lines:
        error = "\n".join(error_lines)
    elif status is not None and status.group(1) != "ok":
        error = f"Status: {status.group(1)}"
    total_time = _first_int(r"TotalTime:\s*(\d+)", text)
    return AmStartResult(ok=error is None, error=error, total_time_ms=total_time)


def logcat_excerpt(text: str, needles: tuple[str, ...], max_lines: int = 40) -> str:
    """The logcat lines that matter for a crash: those naming the app, its tag or a fatal error."""
    wanted = (*needles, "AndroidRuntime", "FATAL EXCEPTION", "DEBUG   :", "libc    :")
    lines = [line for line in text.splitlines() if any(needle in line for needle in wanted)]
    return "\n".join(lines[-max_lines:])


def _colon_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _first_int(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text, re.MULTILINE)
    return int(match.group(1)) if match else None
