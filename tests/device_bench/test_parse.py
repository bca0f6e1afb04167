"""The pure parsers, on output captured from real devices (tests/device_bench/captured)."""

from __future__ import annotations

from pathlib import Path

from mobilize.device.logcat import CrashReport, detect_crash, find_crashes, logcat_excerpt
from mobilize.device.parse import (
    ThermalStatus,
    parse_adb_devices,
    parse_am_start,
    parse_battery,
    parse_getprop,
    parse_meminfo,
    parse_package_info,
    parse_pm_path,
    parse_sha256sum,
    parse_thermal_status,
)

CAPTURED = Path(__file__).with_name("captured")


def captured(name: str) -> str:
    return (CAPTURED / name).read_text()


def test_getprop_reads_every_property_with_spaces_in_values() -> None:
    props = parse_getprop(captured("getprop_pixel7.txt"))
    assert props["ro.product.model"] == "Pixel 7"
    assert props["ro.product.cpu.abilist"] == "arm64-v8a,armeabi-v7a,armeabi"
    assert props["ro.build.version.sdk"] == "34"
    assert len(props) == 14


def test_battery_temperature_is_in_tenths_of_a_degree() -> None:
    info = parse_battery(captured("battery.txt"))
    assert info.temperature_c == 31.2
    assert info.level == 81
    assert info.powered is True


def test_thermal_status_line() -> None:
    assert parse_thermal_status(captured("thermalservice.txt")) is ThermalStatus.MODERATE
    assert parse_thermal_status("Thermal Status: 0\n") is ThermalStatus.NONE
    assert parse_thermal_status("HAL Ready: false\n") is None
    assert ThermalStatus.MODERATE.label == "moderate"
    assert ThermalStatus.from_label("severe") is ThermalStatus.SEVERE


def test_meminfo_totals_and_native_heap() -> None:
    info = parse_meminfo(captured("meminfo.txt"))
    assert (info.pss_kb, info.rss_kb, info.native_heap_pss_kb, info.pid) == (
        31939, 117124, 18234, 23412)


def test_meminfo_of_a_process_that_is_gone() -> None:
    info = parse_meminfo(captured("meminfo_no_process.txt"))
    assert info.pss_kb is None and info.pid is None


def test_meminfo_old_layout_uses_the_total_row() -> None:
    text = "** MEMINFO in pid 7 [x] **\n  Native Heap  100  90\n        TOTAL   5000  4000\n"
    info = parse_meminfo(text)
    assert (info.pss_kb, info.native_heap_pss_kb, info.pid) == (5000, 100, 7)


def test_package_version_and_missing_package() -> None:
    info = parse_package_info("dev.mobilize.bench", captured("dumpsys_package.txt"))
    assert info is not None
    assert (info.version_code, info.version_name) == (1, "0.1.0")
    assert parse_package_info("dev.mobilize.bench", captured("dumpsys_package_missing.txt")) is None


def test_pm_path_lists_every_split() -> None:
    text = "package:/data/app/x/base.apk\npackage:/data/app/x/split_config.arm64_v8a.apk\n"
    assert parse_pm_path(text) == ["/data/app/x/base.apk", "/data/app/x/split_config.arm64_v8a.apk"]
    assert parse_pm_path("") == []


def test_sha256sum_digest() -> None:
    assert parse_sha256sum(captured("sha256sum.txt")) == (
        "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7")
    assert parse_sha256sum("sha256sum: /x: No such file or directory") is None


def test_adb_devices_states_and_details() -> None:
    entries = parse_adb_devices(captured("adb_devices.txt"))
    assert [(e.serial, e.state) for e in entries] == [
        ("127.0.0.1:5555", "device"), ("R58M123ABC", "unauthorized"), ("emulator-5556", "offline")]
    assert entries[0].details["model"] == "Pixel_7"


def test_adb_devices_long_no_permissions_row_and_noise() -> None:
    text = (
        "List of devices attached\n"
        "ABC                    no permissions (missing udev rules? user is in the plugdev "
        "group); see [http://developer.android.com/tools/device.html] usb:1-1 transport_id:2\n"
        "XYZ\tsideload\n"
        "error: device offline\n"
    )
    entries = parse_adb_devices(text)
    assert [(e.serial, e.kind, e.details) for e in entries] == [
        ("ABC", "no permissions", {"usb": "1-1", "transport_id": "2"}),
        ("XYZ", "sideload", {}),
    ]
    assert entries[0].state.endswith("tools/device.html]")


def test_am_start_success_and_error() -> None:
    ok = parse_am_start(captured("am_start_ok.txt"))
    assert ok.ok and ok.total_time_ms == 412 and ok.error is None
    missing = parse_am_start(captured("am_start_missing.txt"))
    assert not missing.ok
    assert "does not exist" in (missing.error or "")


def test_logcat_excerpt_keeps_the_crash_and_drops_unrelated_lines() -> None:
    excerpt = logcat_excerpt(captured("logcat_crash.txt"), ("dev.mobilize.bench", "MobilizeBench"))
    assert "OutOfMemoryError" in excerpt
    assert "has died" in excerpt
    assert "unrelated line" not in excerpt


def test_java_crash_is_found_for_its_package_only() -> None:
    text = captured("logcat_crash.txt")
    crash = CrashReport(
        "java",
        "dev.mobilize.bench",
        23412,
        detail="java.lang.OutOfMemoryError: Failed to allocate a 268435472 byte allocation",
    )
    assert find_crashes(text) == [crash]
    assert detect_crash(text, "dev.mobilize.bench") == crash
    assert detect_crash(text, "dev.mobilize") is None


def test_java_crash_without_a_process_line_takes_the_started_package() -> None:
    text = (
        "I/ActivityManager(  500): Start proc dev.mobilize.bench for activity "
        "dev.mobilize.bench/.BenchmarkActivity: pid=4242 uid=10001 gids={}\n"
        "E/AndroidRuntime( 4242): FATAL EXCEPTION: main\n"
        "E/AndroidRuntime( 4242): java.lang.IllegalStateException: boom\n"
    )
    crash = detect_crash(text, "dev.mobilize.bench")
    assert crash is not None and crash.kind == "java" and crash.pid == 4242
    assert crash.detail == "java.lang.IllegalStateException: boom"


def test_am_start_timeout_is_a_launch_and_a_refusal_is_not() -> None:
    timeout = parse_am_start("Starting: Intent { cmp=a/.B }\nStatus: timeout\nWaitTime: 10001\n")
    assert timeout.ok and timeout.timed_out and timeout.error is None
    refused = parse_am_start(
        "Security exception: Permission Denial: not exported from uid 10084\n\n"
        "java.lang.SecurityException: Permission Denial: not exported from uid 10084\n"
        "\tat com.android.server.am.ActivityStackSupervisor.checkStartAnyActivityPermission\n"
    )
    assert not refused.ok
    assert refused.error == "Security exception: Permission Denial: not exported from uid 10084"
    modern = parse_am_start(
        "Starting: Intent { cmp=a/.B }\nException occurred while executing 'start':\n"
        "java.lang.SecurityException: Permission Denial: starting Intent { cmp=a/.B }\n"
    )
    assert not modern.ok and modern.error is not None
    assert modern.error.splitlines()[0] == "Exception occurred while executing 'start':"
