"""Pure parsers: device shell output in, typed records out.

Every function here takes the text a command printed and returns a frozen record; none
talks to a device, so each is tested on captured output (tests/device_bench/test_parse.py,
and the real phones' captures in tests/device_bench/test_real_captures.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mobilize.bench.app_contract import ThermalStatus

_GETPROP_START = re.compile(r"^\[(?P<key>[^\]]+)\]:\s*\[(?P<value>.*)$")


@dataclass(frozen=True)
class BatteryInfo:
    level: int | None
    temperature_c: float | None
    powered: bool


@dataclass(frozen=True)
class MemInfo:
    """Figures of `dumpsys meminfo PKG`, in kB; all None when the process is not running.

    `rows` is the main table (row name -> column title -> kB, e.g. rows["GL mtrack"]["Pss
    Total"]); a row without heap columns has only its first columns.
    """

    pss_kb: int | None
    rss_kb: int | None
    native_heap_pss_kb: int | None
    pid: int | None
    process: str | None = None
    native_heap_rss_kb: int | None = None
    graphics_pss_kb: int | None = None  # App Summary "Graphics:" (Gfx dev + GL/EGL mtrack)
    swap_kb: int | None = None  # TOTAL SWAP PSS (Android 10+) or TOTAL SWAP (KB)
    rows: Mapping[str, Mapping[str, int]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class PackageInfo:
    package: str
    version_code: int | None
    version_name: str | None


@dataclass(frozen=True)
class AdbDeviceEntry:
    """One line of `adb devices [-l]`; `state` exactly as adb printed it."""

    serial: str
    state: str  # device, unauthorized, offline, "no permissions (...); see [...]", ...
    details: dict[str, str]

    @property
    def kind(self) -> str:
        """The state without adb's explanation: "no permissions" for the udev states."""
        match = _NO_PERMISSIONS.match(self.state)
        return match.group(0) if match else self.state


@dataclass(frozen=True)
class AmStartResult:
    """`am start [-W]`: ok unless the activity manager refused or could not find the activity.

    "Status: timeout" is ok: the activity was launched, `am` only stopped waiting for it to
    report drawn (an app that is slow to draw, or a headless one).
    """

    ok: bool
    error: str | None
    total_time_ms: int | None
    status: str | None = None
    launch_state: str | None = None
    activity: str | None = None
    wait_time_ms: int | None = None

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"


def parse_getprop(text: str) -> dict[str, str]:
    """`getprop` with no argument: lines like `[ro.product.model]: [Pixel 7]`.

    A value may span lines (boot reason history, a modem's version with a trailing newline):
    it runs until a line ending in "]", and keeps its newlines ("\\r\\n" read as "\\n").
    """
    props: dict[str, str] = {}
    key: str | None = None
    parts: list[str] = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        start = _GETPROP_START.match(line.strip()) if key is None else None
        if key is None and start is None:
            continue
        if start is not None:
            key, line = start["key"], start["value"]
            parts = []
        parts.append(line)
        if line.rstrip().endswith("]"):
            parts[-1] = parts[-1].rstrip()[:-1]
            props[key] = "\n".join(parts)
            key = None
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


_MEMINFO_HEADER = re.compile(r"^\*\* MEMINFO in pid (\d+) \[(.*)\] \*\*", re.MULTILINE)
_DASHES = re.compile(r"^\s*-{3,}(?:\s+-{3,}){2,}\s*$")
_TABLE_ROW = re.compile(r"^\s*(?P<name>\S.*?)\s+(?P<values>\d+(?:\s+\d+)*)\s*$")


def parse_meminfo(text: str) -> MemInfo:
    """`dumpsys meminfo PKG` (Android 4 to 15 layouts): the first process's figures, in kB."""
    if re.search(r"No process found", text):
        return MemInfo(None, None, None, None)
    header = _MEMINFO_HEADER.search(text)
    if header is not None:  # several processes of the package: the first block only
        following = _MEMINFO_HEADER.search(text, header.end())
        text = text[header.start() : following.start() if following else len(text)]
    rows = _meminfo_table(text.splitlines())
    total, native = rows.get("TOTAL", {}), rows.get("Native Heap", {})
    pss = _first_int(r"TOTAL PSS:\s*(\d+)", text)
    if pss is None:
        pss = next(iter(total.values()), None)  # the table's first column is Pss (Total)
    if pss is None:  # App Summary of Android 9/10 ("TOTAL:"), or a table we could not read
        pss = _first_int(r"^\s*TOTAL:?\s+(\d+)", text)
    rss = _first_int(r"TOTAL RSS:\s*(\d+)", text)
    if rss is None:
        rss = total.get("Rss Total")
    native_pss = next(iter(native.values()), None)
    if native_pss is None:
        native_pss = _first_int(r"^\s*Native Heap\s+(\d+)", text)
    swap = _first_int(r"TOTAL SWAP(?: PSS| \(KB\)):\s*(\d+)", text)
    return MemInfo(
        pss_kb=pss,
        rss_kb=rss,
        native_heap_pss_kb=native_pss,
        pid=int(header.group(1)) if header else None,
        process=header.group(2) if header else None,
        native_heap_rss_kb=native.get("Rss Total"),
        graphics_pss_kb=_first_int(r"^\s*Graphics:\s+(\d+)", text),
        swap_kb=swap,
        rows=rows,
    )


def _meminfo_table(lines: list[str]) -> dict[str, dict[str, int]]:
    """The main table: column titles from the two lines above its dashes, read by position."""
    at = next((i for i, line in enumerate(lines) if _DASHES.match(line)), None)
    if at is None or at < 2:
        return {}
    columns = []
    for dash in re.finditer(r"-+", lines[at]):
        words = [
            word.group(0)
            for title_line in lines[at - 2 : at]
            for word in re.finditer(r"\S+", title_line)
            if dash.start() < word.end() <= dash.end() + 1
        ]
        columns.append(" ".join(words) or f"column {len(columns) + 1}")
    rows: dict[str, dict[str, int]] = {}
    for line in lines[at + 1 :]:
        row = _TABLE_ROW.match(line)
        if row is None:
            break  # the blank (or single-space) line that ends the table
        values = [int(value) for value in row["values"].split()]
        rows[row["name"]] = dict(zip(columns, values, strict=False))
        if row["name"] == "TOTAL":
            break
    return rows


def parse_package_info(package: str, text: str) -> PackageInfo | None:
    """`dumpsys package PKG`: None when the package is not installed.

    The figures come from the package's own "Package [PKG]" block (a full dump lists every
    package; an updated system app appears again under "Hidden system packages:").
    """
    if re.search(r"Unable to find package", text):
        return None
    block = re.search(rf"^\s*Package \[{re.escape(package)}\] ", text, re.MULTILINE)
    if block is not None:  # the first one: "Packages:" comes before "Hidden system packages:"
        newline = text.find("\n", block.end())
        rest = "" if newline < 0 else text[newline + 1 :]
        end = re.search(r"^(?:\S|\s*Package \[)", rest, re.MULTILINE)
        text = rest[: end.start() if end else len(rest)]
    elif re.search(r"^\s*Package \[", text, re.MULTILINE):
        return None  # other packages only
    if "versionCode=" not in text:
        return None
    code = _first_int(r"versionCode=(\d+)", text)
    name_match = re.search(r"^\s*versionName=(.*?)\s*$", text, re.MULTILINE)
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


_ADB_STATES = frozenset(
    "device offline unauthorized authorizing connecting bootloader recovery rescue sideload "
    "host detached unknown".split()
)
# adb's udev wording, old and new: "no permissions (missing udev rules? ...); see [URL]".
_NO_PERMISSIONS = re.compile(r"(?:no|insufficient) permissions\b")
_STATE_AND_DETAILS = re.compile(r"^(?P<state>.*?)(?P<details>(?:\s+[a-z_]+:\S*)*)\s*$")


def parse_adb_devices(text: str) -> list[AdbDeviceEntry]:
    """`adb devices [-l]`: serial, state (as printed, spaces and all) and key:value details.

    adb separates serial and state with a TAB (`-l`: spaces); a TAB row may hold a serial with
    spaces. Lines that are not device rows (the header, daemon and version noise, a prompt)
    are skipped: a space-separated row must name one of adb's states.
    """
    entries: list[AdbDeviceEntry] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("List of devices", "*")):
            continue
        if "\t" in line:
            serial, _, rest = line.partition("\t")
        else:
            serial, _, rest = line.partition(" ")
        serial, rest = serial.strip(), rest.strip()
        if not serial or not rest or serial.endswith(":"):  # "error: device offline"
            continue
        if _NO_PERMISSIONS.match(rest):
            split = _STATE_AND_DETAILS.match(rest)
            assert split is not None  # the pattern matches any text
            state, tokens = split["state"], split["details"].split()
        else:
            state, *tokens = rest.split()
            if state not in _ADB_STATES and "\t" not in line:
                continue
        details = dict(token.split(":", 1) for token in tokens if ":" in token)
        entries.append(AdbDeviceEntry(serial, state, details))
    return entries


# Lines of `am` that mean the start was refused: "Error: Activity class {...} does not
# exist.", "Error type 3", Android 7-9's "Security exception: ..." and the exception itself,
# Android 10+'s "Exception occurred while executing 'start':". Not Android Studio's own
# "Error while executing: ..." / "Error while Launching activity" around them.
_AM_ERROR = re.compile(
    r"^(?:Error(?::| type \d+)|Security exception:|Exception occurred while executing"
    r"|java\.lang\.[\w.$]*(?:Exception|Error)\b|Exception\b)"
)


def parse_am_start(text: str) -> AmStartResult:
    """`am start [-W]`: `Status: ok` (or timeout) and `TotalTime: N`, or the refusal lines."""
    error_lines = [line.strip() for line in text.splitlines() if _AM_ERROR.match(line.strip())]
    refusals = {line.partition(":")[2] for line in error_lines if line.startswith("Security ")}
    error_lines = [  # the exception repeats "Security exception:"'s message: keep one
        line
        for line in error_lines
        if not line.startswith("java.lang.SecurityException:")
        or line.partition(":")[2] not in refusals
    ]
    fields = dict(re.findall(r"^\s*(Status|LaunchState|Activity): *(.*?)\s*$", text, re.MULTILINE))
    status = fields.get("Status")
    error: str | None = None
    if error_lines:
        error = "\n".join(error_lines)
    elif status is not None and status not in ("ok", "timeout"):
        error = f"Status: {status}"
    return AmStartResult(
        ok=error is None,
        error=error,
        total_time_ms=_first_int(r"^\s*TotalTime:\s*(\d+)", text),
        status=status,
        launch_state=fields.get("LaunchState"),
        activity=fields.get("Activity"),
        wait_time_ms=_first_int(r"^\s*WaitTime:\s*(\d+)", text),
    )


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
