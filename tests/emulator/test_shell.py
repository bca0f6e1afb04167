"""The device shell interpreter and Android tools, driven directly (no network)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mobilize.bench import app_contract
from mobilize.emulator.device import EmulatedDevice
from mobilize.emulator.faults import ThermalStatus
from mobilize.emulator.packages import make_stand_in_apk
from mobilize.emulator.profile import load_profile
from mobilize.emulator.shell import BufferSink, ShellSession


@pytest.fixture
def device(tmp_path: Path) -> EmulatedDevice:
    return EmulatedDevice(tmp_path / "device", load_profile())


def sh(device: EmulatedDevice, line: str) -> tuple[int, str, str]:
    out, err = BufferSink(), BufferSink()
    code = ShellSession(device).run(line, out, err)
    return code, out.getvalue().decode(), err.getvalue().decode()


def test_quoting_lists_and_exit_status(device) -> None:
    assert sh(device, "echo 'a  b' \"c $?\" d\\ e") == (0, "a  b c 0 d e\n", "")
    assert sh(device, "false; echo $?") == (0, "1\n", "")
    assert sh(device, "false && echo no || echo yes") == (0, "yes\n", "")
    assert sh(device, "echo '$?'")[1] == "$?\n"
    assert sh(device, "exit 3; echo never") == (3, "", "")


def test_unknown_command_is_127_like_mksh(device) -> None:
    code, out, err = sh(device, "frobnicate --now")
    assert code == 127
    assert err == "/system/bin/sh: frobnicate: inaccessible or not found\n"


def test_shell_metacharacters_inside_quotes_run_nothing(device) -> None:
    name = "/data/local/tmp/x; touch pwned $(touch pwned2).bin"
    code, _, _ = sh(device, f"echo hi > '{name}' && cat '{name}'")
    assert code == 0
    names = {p.name for p in device.sandbox.root.rglob("*")}
    assert "x; touch pwned $(touch pwned2).bin" in names
    assert not {"pwned", "pwned2"} & names


def test_paths_cannot_escape_the_sandbox(device, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    code, out, _ = sh(device, "cat ../../../../../secret.txt /../../secret.txt")
    assert code == 1 and "host secret" not in out
    (device.sandbox.root / "data/local/tmp/link").symlink_to(secret)
    code, out, err = sh(device, "cat /data/local/tmp/link")
    assert code == 1 and "Permission denied" in err and "host secret" not in out


def test_file_commands_and_their_errors(device) -> None:
    assert sh(device, "mkdir /data/local/tmp/a/b")[0] == 1
    assert sh(
        device,
        "mkdir -p /data/local/tmp/a/b && echo x > /data/local/tmp/a/b/f && ls /data/local/tmp/a/b",
    ) == (0, "f\n", "")
    digest = hashlib.sha256(b"x\n").hexdigest()
    assert sh(device, "sha256sum /data/local/tmp/a/b/f")[1] == f"{digest}  /data/local/tmp/a/b/f\n"
    code, _, err = sh(device, "rm /data/local/tmp/a")
    assert code == 1 and "Is a directory" in err
    assert sh(device, "rm -r /data/local/tmp/a && ls /data/local/tmp/a")[2] == (
        "ls: /data/local/tmp/a: No such file or directory\n"
    )
    assert sh(device, "rm -f /data/local/tmp/none")[0] == 0
    assert sh(device, "cat /nope 2>/dev/null; echo $?")[1] == "1\n"
    assert sh(device, "ls /nope 2>&1")[1] == "ls: /nope: No such file or directory\n"
    assert (
        sh(
            device,
            "echo a > /data/local/tmp/m && chmod 600 /data/local/tmp/m"
            " && stat -c %a /data/local/tmp/m",
        )[1]
        == "600\n"
    )


def test_app_data_is_private_without_run_as(device) -> None:
    files = app_contract.APP_FILES_DIR
    code, _, err = sh(device, f"ls {files}")
    assert code == 1 and "Permission denied" in err
    assert sh(device, f"run-as {app_contract.PACKAGE} ls -d files")[1] == "files\n"
    assert (
        sh(device, f"run-as {app_contract.PACKAGE} pwd")[1]
        == f"/data/data/{app_contract.PACKAGE}\n"
    )
    assert (
        sh(device, "run-as com.example.none ls")[2] == "run-as: unknown package: com.example.none\n"
    )


def test_getprop_and_pipes(device) -> None:
    assert sh(device, "getprop ro.product.cpu.abi") == (0, "arm64-v8a\n", "")
    assert sh(device, "getprop no.such.prop") == (0, "\n", "")
    code, out, _ = sh(device, "getprop | grep ro.build.version.sdk")
    assert out == "[ro.build.version.sdk]: [34]\n"
    assert sh(device, "getprop | grep -c ro.product.model")[1] == "1\n"


def test_pm_with_the_stand_in_apk(device, tmp_path) -> None:
    apk = make_stand_in_apk(tmp_path / "app.apk", "com.example.demo", 7, "7.0")
    target = device.sandbox.host_path("/data/local/tmp/app.apk")
    target.write_bytes(apk.read_bytes())
    assert sh(device, "pm install -r /data/local/tmp/app.apk") == (0, "Success\n", "")
    assert "package:com.example.demo" in sh(device, "pm list packages")[1].splitlines()
    assert sh(device, "pm path com.example.demo")[1].startswith("package:/data/app/")
    assert "versionCode=7 minSdk=24" in sh(device, "dumpsys package com.example.demo")[1]
    older = make_stand_in_apk(tmp_path / "old.apk", "com.example.demo", 3, "3.0")
    target.write_bytes(older.read_bytes())
    code, out, _ = sh(device, "pm install /data/local/tmp/app.apk")
    assert code == 1 and out.startswith("Failure [INSTALL_FAILED_VERSION_DOWNGRADE")
    target.write_bytes(b"not a zip")
    code, out, _ = sh(device, "pm install /data/local/tmp/app.apk")
    assert code == 1 and "INSTALL_FAILED_INVALID_APK" in out
    assert sh(device, "pm uninstall com.example.demo") == (0, "Success\n", "")
    assert sh(device, "pm path com.example.demo")[0] == 1


def test_bundled_app_is_preinstalled_at_the_contract_version(device) -> None:
    out = sh(device, f"dumpsys package {app_contract.PACKAGE}")[1]
    assert f"versionCode={app_contract.APP_VERSION_CODE} " in out
    assert f"versionName={app_contract.APP_VERSION_NAME}\n" in out


def test_dumpsys_formats(device) -> None:
    assert "Thermal Status: 0\n" in sh(device, "dumpsys thermalservice")[1]
    device.thermal.raise_to(ThermalStatus.SEVERE, 30)
    assert "Thermal Status: 3\n" in sh(device, "dumpsys thermalservice")[1]
    battery = sh(device, "dumpsys battery")[1]
    assert re.search(r"^  temperature: (\d+)$", battery, re.M).group(1) == str(285 + 3 * 40)
    assert "GLES: Mobilize, Emulated GPU" in sh(device, "dumpsys SurfaceFlinger")[1]
    assert sh(device, f"dumpsys meminfo {app_contract.PACKAGE}")[1].endswith(
        f"No process found for: {app_contract.PACKAGE}\n"
    )


def test_logcat_dump_filter_and_clear(device) -> None:
    from mobilize.emulator.logcat import Priority

    device.logcat.log(Priority.INFO, "MobilizeBench", "run_id=r1 status=ok", pid=42)
    device.logcat.log(Priority.DEBUG, "Other", "noise", pid=43)
    out = sh(device, "logcat -d -s MobilizeBench:I")[1]
    assert re.fullmatch(r"\d\d-\d\d [\d:.]+ +42 +42 I MobilizeBench: run_id=r1 status=ok\n", out)
    assert sh(device, "logcat -c && logcat -d")[1] == ""


def test_df_reports_a_full_disk(device) -> None:
    assert " /data\n" in sh(device, "df /data")[1]
    device.faults.disk_full = True
    line = sh(device, "df /data")[1].splitlines()[1].split()
    assert line[3] == "0" and line[4] == "100%"


def test_syntax_errors_are_status_2(device) -> None:
    code, _, err = sh(device, "echo 'unterminated")
    assert code == 2 and "unterminated" in err
