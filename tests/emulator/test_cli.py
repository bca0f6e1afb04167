"""`mobilize emulator` as a user starts it."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest
from adb_shell.adb_device import AdbDeviceTcp

from mobilize.cli import main

pytestmark = pytest.mark.emulator


def test_emulator_command_serves_until_ctrl_c(tmp_path, host_key, repo_root) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mobilize.cli",
            "emulator",
            "--port",
            "0",
            "--root",
            str(tmp_path / "dev"),
            "--accept-new-keys",
            "--fault",
            "disk_full",
        ],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", first_line)
        assert match, first_line + process.stderr.read()
        port = int(match.group(1))
        device = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=10)
        device.connect(rsa_keys=[host_key.signer()], auth_timeout_s=5)
        assert device.shell("getprop ro.product.cpu.abi") == "arm64-v8a\n"
        assert " 100% /data" in device.shell("df /data")  # the --fault took effect
        device.close()
        process.send_signal(signal.SIGINT)
        # Not communicate(): it reads the raw pipes and would drop whatever readline()
        # above already buffered (the banner's later lines, when they came in one chunk).
        process.wait(timeout=20)
        out, err = process.stdout.read(), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert f"adb connect 127.0.0.1:{port}" in first_line + out
    assert "allowed new key" in out
    assert (
        (tmp_path / "dev" / "data/misc/adb/adb_keys")
        .read_text()
        .startswith(host_key.public_line.split()[0])
    )


def test_busy_port_is_a_clear_error(tmp_path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["emulator", "--port", str(port), "--root", str(tmp_path / "dev")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port" in err


def test_bad_profile_is_a_usage_error(tmp_path, capsys) -> None:
    profile = tmp_path / "phone.json"
    profile.write_text("{not json")
    code = main(
        ["emulator", "--port", "0", "--root", str(tmp_path / "dev"), "--profile", str(profile)]
    )
    assert code == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_profile_changes_what_the_device_reports(tmp_path, host_key) -> None:
    from mobilize.emulator.testing import running_emulator

    profile = {
        "properties": {"ro.product.model": "Pixel 7", "ro.soc.model": "GS201"},
        "gpu": {"vendor": "ARM", "renderer": "Mali-G710", "version": "OpenGL ES 3.2"},
        "battery": {"temperature_tenths_c": 331},
    }
    with running_emulator(tmp_path / "dev", profile=profile) as handle:
        device = AdbDeviceTcp(handle.host, handle.port, default_transport_timeout_s=10)
        device.connect(rsa_keys=[host_key.signer()], auth_timeout_s=5)
        assert device.shell("getprop ro.product.model; getprop ro.soc.model") == "Pixel 7\nGS201\n"
        assert "GLES: ARM, Mali-G710, OpenGL ES 3.2" in device.shell("dumpsys SurfaceFlinger")
        assert "temperature: 331" in device.shell("dumpsys battery")
        device.close()


def test_faults_from_the_command_line(tmp_path, capsys) -> None:
    code = main(["emulator", "--port", "0", "--root", str(tmp_path / "d"), "--fault", "melt=1"])
    assert code == 2
    assert "unknown fault 'melt'" in capsys.readouterr().err
    from mobilize.emulator.faults import Faults, ThermalStatus

    faults = Faults()
    for spec in (
        "disk-full",
        "drop_after_bytes=4096",
        "thermal_during_run=severe",
        "stall_seconds=2",
    ):
        faults.apply_text(spec)
    assert faults.disk_full and faults.drop_after_bytes == 4096 and faults.stall_seconds == 2.0
    assert faults.thermal_during_run is ThermalStatus.SEVERE
    with pytest.raises(ValueError, match="needs a value"):
        faults.apply_text("stall_seconds")
    faults.clear()
    assert faults == Faults()
