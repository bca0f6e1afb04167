"""The device parsers on output captured on real phones (tests/device_bench/captured/real).

Each fixture is `# source:` ... `# ---` then the device's text verbatim (see SOURCES.md there).
Every expected value below is spelled exactly as it appears in that capture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilize.device.logcat import (
    CrashReport,
    detect_crash,
    find_crashes,
    logcat_excerpt,
    parse_logcat_line,
)
from mobilize.device.parse import (
    parse_adb_devices,
    parse_am_start,
    parse_getprop,
    parse_meminfo,
    parse_package_info,
)

REAL = Path(__file__).with_name("captured") / "real"
NO_PERMISSIONS = (
    "no permissions (missing udev rules? user is in the plugdev group); "
    "see [http://developer.android.com/tools/device.html]"
)


def capture(name: str) -> str:
    """The device's text: everything after the `# ---` line, bytes as stored."""
    text = (REAL / name).read_bytes().decode("utf-8")
    header, separator, body = text.partition("# ---\n")
    if not separator:
        header, separator, body = text.partition("# ---\r\n")
    assert separator and header.startswith("# source:"), name
    return body


# --- adb devices ---------------------------------------------------------------------------

ADB_DEVICES = {
    "adb_devices__android-udev-rules-339-quest3.txt": [("2G0YC1ZF7T0D3K", NO_PERMISSIONS, {})],
    "adb_devices__android-udev-rules-345.txt": [
        ("<ID removed>", "device", {}),
        ("<ID removed>", "device", {}),
        ("<ID removed>", NO_PERMISSIONS, {}),
    ],
    "adb_devices__flutter-10293-emulators-unauthorized.txt": [
        ("emulator-5558", "device", {}),
        ("fc74d864", "device", {}),
        ("emulator-5556", "unauthorized", {}),
        ("emulator-5554", "device", {}),
    ],
    "adb_devices__goadb-2-long.txt": [
        (
            "UYT5T18414003349",
            "device",
            {
                "usb": "1114112X",
                "product": "ALP-AL00",
                "model": "ALP_AL00",
                "device": "HWALP",
                "transport_id": "23",
            },
        )
    ],
    "adb_devices__madb-141-old-wording.txt": [
        (
            "009d1cd696d5194a",
            "no permissions (user in plugdev group; are your udev rules wrong?); "
            "see [http://developer.android.com/tools/device.html",
            {},
        )
    ],
    "adb_devices__madb-86-recovery.txt": [
        (
            "ZY3222LBDC",
            "recovery",
            {"usb": "337641472X", "product": "omni_cedric", "device": "cedric"},
        )
    ],
    "adb_devices__open-autoglm-155-offline.txt": [("emulator-5554", "offline", {})],
    "adb_devices__openpilot-36516-truncated.txt": [
        (
            "863276c1",
            "no permissions (missing udev rules? user is in the plugdev group); "
            "see [http://developer.android.com/tools/device.htm",
            {},
        )
    ],
    "adb_devices__rayhunter-162.txt": [("eb9f484b", NO_PERMISSIONS, {})],
    "adb_devices__scrcpy-354-unauthorized-daemon-noise.txt": [
        ("LHS7N*************", "unauthorized", {})
    ],
}


@pytest.mark.parametrize("name", sorted(ADB_DEVICES))
def test_adb_devices(name: str) -> None:
    entries = parse_adb_devices(capture(name))
    assert [(e.serial, e.state, e.details) for e in entries] == ADB_DEVICES[name]
    for entry in entries:
        expected = "no permissions" if entry.state.startswith("no permissions") else entry.state
        assert entry.kind == expected


# --- am start ------------------------------------------------------------------------------

AM_START = {
    # name: (ok, status, error, total_time_ms, wait_time_ms, launch_state, activity)
    "am_start__argent-615-W-status-timeout.txt": (
        True, "timeout", None, None, 11639, "UNKNOWN (-1)", "com.anonymous.myapp/.MainActivity"),
    "am_start__encapp-W-status-ok-launchstate.txt": (
        True, "ok", None, 1479, 1482, "COLD",
        "com.facebook.alohaapps.launcher/com.facebook.aloha.app.home.touch.HomeActivity"),
    "am_start__tutsplus-7-activity-does-not-exist.txt": (
        False, None,
        "Error type 3\nError: Activity class {com.tutsplus.matt.bluetoothscanner/"
        "com.tutsplus.matt.bluetoothscanner.ListActivity} does not exist.",
        None, None, None, None),
    "am_start__zhihudaily-27-activity-does-not-exist-5.0.txt": (
        False, None,
        "Error type 3\n"
        "Error: Activity class {com.rctzhihudaily/com.rctzhihudaily.MainActivity} does not exist.",
        None, None, None, None),
    "am_start__appium-desktop-605-security-exception-8.1.txt": (
        False, None,
        "Security exception: Permission Denial: starting Intent { flg=0x10000000 "
        "cmp=com.isinolsun.app/.activities.OnBoarderActivity } from null (pid=11484, uid=2000) "
        "not exported from uid 10084",
        None, None, None, None),
    "am_start__flashlight-21-security-exception-huawei.txt": (
        False, None,
        "Security exception: Permission Denial: starting Intent { act=android.intent.action.MAIN "
        "cat=[android.intent.category.LAUNCHER] flg=0x10000000 "
        "cmp=com.amazon.mShop.android.shopping/com.amazon.mShop.navigation.MainActivity } from "
        "null (pid=8993, uid=2000) not exported from uid 10155",
        None, None, None, None),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(AM_START))
def test_am_start(name: str) -> None:
    result = parse_am_start(capture(name))
    ok, status, error, total, wait, launch_state, activity = AM_START[name]
    assert (result.ok, result.status, result.error) == (ok, status, error)
    assert (result.total_time_ms, result.wait_time_ms) == (total, wait)
    assert (result.launch_state, result.activity) == (launch_state, activity)
    assert result.timed_out is (status == "timeout")


def test_am_start_security_exception_flattened_onto_one_line() -> None:
    text = capture("am_start__appium-11307-security-exception-flattened.txt")
    result = parse_am_start(text)
    assert not result.ok
    assert result.error == text.strip()  # the one line, as Appium collapsed it
    assert result.error.startswith(
        "Security exception: Permission Denial: starting Intent { flg=0x10000000 "
        "cmp=com.kingnet.fiveline/.ui.main.MainActivity } from null (pid=19537, uid=2000) "
        "not exported from uid 10246 java.lang.SecurityException: "
    )


# --- dumpsys package -----------------------------------------------------------------------

PACKAGES = {
    "dumpsys_package__dotnet-api-docs-11065-pre-nougat.txt": {
        "eu.chainfire.supersu.pro": (278, "2.78"),
    },
    "dumpsys_package__multibox-rk322x-7.1-versionname-spaces.txt": {
        "com.android.vending": (81497000, "14.9.70-all [0] [PR] 248420241"),
        "com.google.android.gms": (17122016, "17.1.22 (040304-245988633)"),
        "com.netflix.mediaclient": (200147, "4.16.1 build 200147"),
        "com.example.not.installed": None,
    },
    # An updated system app: its "Packages:" block, not the "Hidden system packages:" one.
    "dumpsys_package__tekartik-wearos-hidden-system.txt": {
        "com.tekartik.package1": (20, "1.0.16"),
    },
    "dumpsys_package__tekartik-wearos-user-app.txt": {"com.tekartik.package2": (248, "1.4.73")},
}


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_dumpsys_package(name: str) -> None:
    text = capture(name)
    for package, expected in PACKAGES[name].items():
        info = parse_package_info(package, text)
        if expected is None:
            assert info is None, package
        else:
            assert info is not None, package
            assert (info.package, info.version_code, info.version_name) == (package, *expected)


# --- getprop -------------------------------------------------------------------------------

GETPROP = {
    # name: (number of properties, {key: value})
    "getprop__asp-coloros14-findx3pro-crlf.txt": (13, {
        "DEVICE_PROVISIONED": "1",
        "persist.sys.boot.reason": "",
        "persist.sys.boot.reason.history":
            "reboot,novib,1755800026\nreboot,1755499833\nreboot,1747367980\nreboot,novib,1754417537",
        "persist.sys.bootsilence": "1",
        "persist.sys.chgpwroff": "1",
    }),
    "getprop__asp-eui-android6-letv-mtk.txt": (8, {
        "mtk.md1.starttime": "1s Mon Jan 19 22:31:31 2015\n",
        "mtk.md1.status": "ready",
        "mtk.md3.starttime": "1s Mon Jan 19 22:31:31 2015\n",
        "mtk_wifi.fwpath": "STA",
    }),
    "getprop__asp-lineage22-pixel4xl.txt": (11, {
        "persist.sys.boot.reason.history":
            "bootloader,1758959534\nreboot,ota,1758509953\nreboot,,1758509925\nreboot,shell,1757764739",
        "persist.sys.dalvik.vm.lib.2": "libart.so",
        "ro.build.fingerprint":
            "google/coral/coral:13/TP1A.221005.002.B2/9382335:user/release-keys",
        "ro.build.version.release": "15",
        "ro.product.model": "Pixel 4 XL",
    }),
    "getprop__asp-miui10-android7-redmi5a-trailing-newline.txt": (14, {
        "persist.radio.ver_info": "MSM8917.LA.3.0-00470-STD.PROD-4.149578.1.20180921\n",
        "persist.rild.nitz_long_ons_0": "",
        "persist.rild.nitz_short_ons_2": "",
    }),
    "getprop__asp-pixelexperience13-redmi-note5-multiline.txt": (48, {
        "persist.sys.boot.reason.history":
            "shutdown,userrequested,1769565826\nshutdown,userrequested,1768967296",
        "persist.sys.dalvik.vm.lib.2": "libart.so",
        "persist.vendor.camera.rearAux.fuseId":
            "back_aux: 1878780a0a303032321010a0a08080000000000000000001010303000003\n",
        "persist.vendor.camera.rearMain.fuseId":
            "back: 000000000000000000000000000000000000000000000000000000000000\n",
        "persist.vendor.camera.rearfrontMain.fuseId":
            "front: 01383855550a0a1919010110100909080801010000151504040c0c05050000a8\n",
        "persist.vendor.camera.stats.test": "5",
        "persist.vendor.camera.exif.model": "Redmi Note 5",
        "ro.build.version.release": "13",
        "ro.product.model": "Redmi Note 5",
    }),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GETPROP))
def test_getprop(name: str) -> None:
    props = parse_getprop(capture(name))
    count, expected = GETPROP[name]
    assert {key: props.get(key) for key in expected} == expected
    assert len(props) == count
    assert not any("]" in key or key.startswith("[") for key in props)


# --- dumpsys meminfo -----------------------------------------------------------------------

MEMINFO = {
    # name: (pss, rss, native heap pss, pid, process, native heap rss, graphics, swap)
    "meminfo__droid-monitor-12-android6-partial.txt":  # cut before the TOTAL row
        (None, None, 2145, 9702, "com.android.chrome", None, None, None),
    "meminfo__gracker-launcher3-android11-a-d-whitespace-stripped.txt":
        (105529, 187052, 24482, 21936, "com.android.launcher3", 27072, 61692, 0),
    "meminfo__gracker-memorylab-swappss-dalvik-details.txt":
        (337790, 421296, 80860, 20602, "com.androidperformance.memorylab", 82336, 57172, 162),
    "meminfo__gracker-oppo-launcher-no-rss.txt":
        (148046, None, 69969, 10396, "com.oppo.launcher", None, 43532, 0),
    "meminfo__gracker-pixel3-android12-systemui.txt":
        (96932, 182691, 22219, 2084, "com.android.systemui", 24944, 27095, 0),
    "meminfo__rethink-572-app-summary-huge-swap.txt":  # the App Summary only
        (1287534, 187488, None, None, None, None, 1616, 1145221),
    "meminfo__rive-unity-134-partial.txt":  # cut inside the table
        (None, None, 108862, 1525, "com.-.-", 109808, None, None),
}  # fmt: skip

MEMINFO_ROWS = {
    # name: {row: {column: kB}} for a few rows of the main table
    "meminfo__droid-monitor-12-android6-partial.txt": {
        "Dalvik Heap": {"Pss Total": 553, "Private Dirty": 500, "Private Clean": 0,
                        "Swapped Dirty": 0, "Heap Size": 26475, "Heap Alloc": 19914,
                        "Heap Free": 6561},
        "Unknown": {"Pss Total": 76, "Private Dirty": 68, "Private Clean": 0, "Swapped Dirty": 0},
    },
    "meminfo__gracker-launcher3-android11-a-d-whitespace-stripped.txt": {
        "Gfx dev": {"Pss Total": 5884, "Pss Clean": 0, "Shared Dirty": 0, "Private Dirty": 5884,
                    "Shared Clean": 0, "Private Clean": 0, "Swap Dirty": 0, "Rss Total": 5884},
        "EGL mtrack": {"Pss Total": 51348, "Pss Clean": 0, "Shared Dirty": 0,
                       "Private Dirty": 51348, "Shared Clean": 0, "Private Clean": 0,
                       "Swap Dirty": 0, "Rss Total": 51348},
    },
    "meminfo__gracker-memorylab-swappss-dalvik-details.txt": {
        "GL mtrack": {"Pss Total": 832, "Private Dirty": 832, "Private Clean": 0,
                      "SwapPss Dirty": 0, "Rss Total": 832},
        "TOTAL": {"Pss Total": 337790, "Private Dirty": 293788, "Private Clean": 18924,
                  "SwapPss Dirty": 162, "Rss Total": 421296, "Heap Size": 634109,
                  "Heap Alloc": 428404, "Heap Free": 201098},
    },
    "meminfo__gracker-oppo-launcher-no-rss.txt": {
        "GL mtrack": {"Pss Total": 23004, "Private Dirty": 23004, "Private Clean": 0,
                      "Swap Dirty": 0},
    },
    "meminfo__gracker-pixel3-android12-systemui.txt": {
        "EGL mtrack": {"Pss Total": 12912, "Private Dirty": 12912, "Private Clean": 0,
                       "Swap Dirty": 0, "Rss Total": 12912},
    },
    "meminfo__rethink-572-app-summary-huge-swap.txt": {},
    "meminfo__rive-unity-134-partial.txt": {
        "Other dev": {"Pss Total": 217872, "Private Dirty": 217844, "Private Clean": 16,
                      "SwapPss Dirty": 0, "Rss Total": 218248},
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MEMINFO))
def test_meminfo(name: str) -> None:
    info = parse_meminfo(capture(name))
    assert (
        info.pss_kb, info.rss_kb, info.native_heap_pss_kb, info.pid, info.process,
        info.native_heap_rss_kb, info.graphics_pss_kb, info.swap_kb,
    ) == MEMINFO[name]  # fmt: skip
    for row, columns in MEMINFO_ROWS[name].items():
        assert info.rows[row] == columns, row
    # only the main table: not the Dalvik Details, App Summary or Objects rows
    assert not any(row.startswith(".Heap") or row.endswith(":") for row in info.rows)


def test_meminfo_table_row_count_and_the_row_after_total() -> None:
    info = parse_meminfo(capture("meminfo__gracker-oppo-launcher-no-rss.txt"))
    assert list(info.rows)[0] == "Native Heap" and list(info.rows)[-1] == "TOTAL"
    assert len(info.rows) == 19
    partial = parse_meminfo(capture("meminfo__droid-monitor-12-android6-partial.txt"))
    assert list(partial.rows)[-1] == "Unknown" and len(partial.rows) == 12


# --- logcat: lines, crashes, excerpts --------------------------------------------------------


def test_logcat_line_formats() -> None:
    brief = parse_logcat_line("F/libc    (17544): Fatal signal 11 (SIGSEGV), code 1")
    assert (brief.priority, brief.tag, brief.pid) == ("F", "libc", 17544)
    empty = parse_logcat_line("I/DEBUG   (  220):")
    assert (empty.tag, empty.pid, empty.message) == ("DEBUG", 220, "")
    thread = parse_logcat_line("10-28 19:29:47.096 17333 17333 F DEBUG   : ")
    assert (thread.priority, thread.tag, thread.pid, thread.message) == ("F", "DEBUG", 17333, "")
    tomb = parse_logcat_line(
        "05-24 13:49:47.933  2401  2401 I /system/bin/tombstoned: received crash request for pid"
    )
    assert (tomb.tag, tomb.pid) == ("/system/bin/tombstoned", 2401)
    studio = parse_logcat_line(
        "2020-09-24 15:32:44.997 14368-14368/? A/DEBUG: signal 11 (SIGSEGV), code 1 (SEGV_MAPERR)"
    )
    assert (studio.priority, studio.tag, studio.pid) == ("A", "DEBUG", 14368)
    raw = parse_logcat_line("backtrace:")
    assert (raw.tag, raw.pid, raw.message) == (None, None, "backtrace:")


CRASHES = {
    # name: (the crashes found, {package: found for it?})
    "logcat_brief__dejavu-8-start-proc-and-fatal.txt": (
        [CrashReport("native", "org.fitchfamily.android.dejavu", 17544, "SIGSEGV", "0xdeadbaad",
                     "Abort message: 'invalid address or address of corrupt block 0x28 passed "
                     "to dlfree'", ".android.dejavu")],
        {"org.fitchfamily.android.dejavu": True, "org.fitchfamily.android": False},
    ),
    "logcat_brief__fresco-376-pre-lollipop-libc.txt": (  # 4.x wording: "at 0x.. (code=1)"
        [CrashReport("native", None, 8000, "SIGSEGV", "0xdeadbaad")],
        {"com.facebook.fresco": False},
    ),
    "logcat_brief__gnirehtet-201-fatal-and-debug.txt": (
        [CrashReport("native", "com.genymobile.gnirehtet", 31733, "SIGSEGV", "0xdeadbaad",
                     "Abort message: 'invalid address or address of corrupt block 0x31 passed "
                     "to dlfree'", "obile.gnirehtet")],
        {"com.genymobile.gnirehtet": True},
    ),
    "logcat_brief__jitsi-meet-1782-threadtime-6.0.txt": (
        [CrashReport("native", "org.jitsi.meet", 12240, "SIGSEGV", "0xdeadbaad",
                     "Abort message: 'invalid address or address of corrupt block 0xcb passed "
                     "to dlfree'", "org.jitsi.meet")],
        {"org.jitsi.meet": True, "org.jitsi": False},
    ),
    "logcat_brief__koreader-5020-filtered-with-noise.txt": (  # a worker thread: no name
        [CrashReport("native", None, 3044, "SIGSEGV", "0x810")],
        {"org.koreader.launcher": False},
    ),
    "logcat_brief__linphone-664-threadtime-8.1-crash-dump.txt": (  # cut before ">>> <<<"
        [CrashReport("native", None, 11618, "SIGSEGV", "0x1", None, ".linphone.debug")],
        {"org.linphone.debug": True, "org.linphone": False},
    ),
    "logcat_brief__ndk-samples-414-studio-start-proc-4.4.txt": ([], {"com.itsec.droneapp": False}),
    "tombstone__frida-il2cpp-bridge-481-threadtime-with-fatal.txt": (  # "pid 31840 ()"
        [CrashReport("native", "com.example.app", 31840, "SIGSEGV", "0x0",
                     "Cause: null pointer dereference")],
        {"com.example.app": True, "com.example": False},
    ),
    "tombstone__frostwire-jlibtorrent-240-studio-with-fatal-8.1.txt": (
        [CrashReport("native", "com.apkmatrix.components.ultradownloader.demo", 13915, "SIGSEGV",
                     "0x0", "Cause: null pointer dereference", "downloader.demo")],
        {"com.apkmatrix.components.ultradownloader.demo": True},
    ),
    "tombstone__glance-11-raw-with-fatal-10.txt": (
        [CrashReport("native", "com.littlegnal.glance_example", 30462, "SIGSEGV", "0xa88",
                     "Cause: null pointer dereference", ".glance_example")],
        {"com.littlegnal.glance_example": True},
    ),
    # Tombstone blocks without the libc "Fatal signal" line:
    "tombstone__hackwebrtc-25-threadtime-no-fatal-8.0.txt": (
        [CrashReport("native", "com.example", 26085, "SIGSEGV", "0xf4240")],
        {"com.example": True, "com.example.app": False},
    ),
    "tombstone__tensorflow-18440-studio-no-fatal-6.0.txt": (
        [CrashReport("native", "me.visual.camp.mobileeye", 27456, "SIGSEGV", "0x6a9e1398")],
        {"me.visual.camp.mobileeye": True},
    ),
    "tombstone__tensorflow-61633-raw-no-fatal.txt": (
        [CrashReport("native", "com.vt.tv.aipq", 14794, "SIGSEGV", "0xa59fdbc0")],
        {"com.vt.tv.aipq": True, "dev.mobilize.bench": False},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CRASHES))
def test_crashes(name: str) -> None:
    text = capture(name)
    crashes, packages = CRASHES[name]
    assert find_crashes(text) == crashes
    for package, crashed in packages.items():
        found = detect_crash(text, package)
        assert (found is not None) is crashed, package
        if crashed:
            assert found == crashes[0]


EXCERPT_LINES = {
    # name: lines the crash excerpt must keep (verbatim), and one it must drop (or None)
    "logcat_brief__dejavu-8-start-proc-and-fatal.txt": (
        ["F/libc    (17544): Fatal signal 11 (SIGSEGV), code 1, fault addr 0xdeadbaad in tid "
         "17544 (.android.dejavu)",
         "I/DEBUG   (  670): pid: 17544, tid: 17544, name: .android.dejavu  >>> "
         "org.fitchfamily.android.dejavu <<<"], None),
    "logcat_brief__koreader-5020-filtered-with-noise.txt": (
        ["F/libc    ( 3044): Fatal signal 11 (SIGSEGV), code 1, fault addr 0x810 in tid 27835 "
         "(Thread-341)"],
        "F/google-breakpad( 9294): V AndroidWebView:70.0.3538.110"),
    "logcat_brief__linphone-664-threadtime-8.1-crash-dump.txt": (
        ["05-24 13:49:47.933  2401  2401 I /system/bin/tombstoned: received crash request for "
         "pid 11618",
         "05-24 13:49:47.934 12008 12008 F DEBUG   : ABI: 'arm'"],
        "05-24 13:49:46.998 25489 25489 W ChimeraUtils: Non Chimera context"),
    "tombstone__frostwire-jlibtorrent-240-studio-with-fatal-8.1.txt": (
        ["2020-09-24 15:32:44.997 14368-14368/? A/DEBUG: pid: 13915, tid: 14110, name: "
         "downloader.demo  >>> com.apkmatrix.components.ultradownloader.demo <<<"], None),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXCERPT_LINES))
def test_logcat_excerpt_keeps_crash_lines_of_every_format(name: str) -> None:
    excerpt = logcat_excerpt(capture(name), ("dev.mobilize.bench", "MobilizeBench"), 200)
    kept, dropped = EXCERPT_LINES[name]
    lines = excerpt.splitlines()
    for line in kept:
        assert line in lines
    assert dropped is None or dropped not in lines


# --- every capture is read by a test -------------------------------------------------------


def test_every_device_capture_is_covered() -> None:
    """test_real_benchmark_model.py covers the benchmark_model and GPU-delegate captures."""
    covered = {*ADB_DEVICES, *AM_START, *PACKAGES, *GETPROP, *MEMINFO, *CRASHES}
    covered |= {"am_start__appium-11307-security-exception-flattened.txt"}
    others = ("benchmark_model_op_profiling__", "gpu_delegate_log__")
    on_disk = {path.name for path in REAL.glob("*.txt") if not path.name.startswith(others)}
    assert on_disk - covered == set()
    assert covered - on_disk == set()
    assert len(list(REAL.glob("*.txt"))) == 62
