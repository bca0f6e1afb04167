"""The Device protocol and the high-level ops over adb-shell TCP, against the emulated device."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilize.device import ops
from mobilize.device.errors import AdbError, DeviceLostError, DeviceTimeoutError
from mobilize.device.transports import AdbShellDevice, ConnectOptions, connect_tcp, quote
from mobilize.emulator.testing import running_emulator

pytestmark = pytest.mark.emulator


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[object]:
    with running_emulator(tmp_path / "device") as handle:
        yield handle


@pytest.fixture
def device(emu, tmp_path: Path) -> Iterator[AdbShellDevice]:
    connected = connect_tcp(emu.serial, ConnectOptions(tmp_path / "key" / "adbkey"), print)
    yield connected
    connected.close()


def test_exit_codes_and_output_come_back(device) -> None:
    result = device.shell("echo hello; false", 10)
    assert (result.stdout, result.exit_code) == ("hello\n", 1)
    assert device.shell("true", 10).ok


def test_a_failing_command_raises_adb_error_with_its_context(device) -> None:
    with pytest.raises(AdbError) as caught:
        ops.run_checked(device, "cat /data/local/tmp/absent", what="reading failed")
    error = caught.value
    assert error.device_exit_code == 1
    assert error.command == "cat /data/local/tmp/absent"
    assert "No such file" in error.stdout
    assert error.serial == device.serial
    assert "exit code: 1" in error.message and device.serial in error.message


def test_push_pull_round_trip_with_a_hostile_name(device, tmp_path) -> None:
    local = tmp_path / "payload.bin"
    local.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    remote = "/data/local/tmp/a b 'c\"; rm -rf x; $(id).bin"
    digest = ops.push_verified(device, local, remote, timeout=30)
    assert digest == ops.local_sha256(local)
    back = tmp_path / "back.bin"
    device.pull(remote, back, 30)
    assert back.read_bytes() == local.read_bytes()
    ops.remove(device, remote)
    assert not device.shell(f"ls {quote(remote)}", 10).ok


def test_device_facts(device) -> None:
    info = ops.device_info(device)
    assert info.model == "Mobilize Emulated Phone"
    assert info.abi == "arm64-v8a" and "armeabi-v7a" in info.abis
    assert info.sdk == 34 and info.android_version == "14"
    assert info.gpu_renderer and "OpenGL ES" in info.gpu_renderer
    assert ops.battery(device).temperature_c == pytest.approx(28.5)
    assert ops.thermal_status(device).label == "none"
    app = ops.package_info(device)
    assert app is not None and app.version_code == 1


def test_a_dropped_connection_is_a_lost_device(emu, device, tmp_path) -> None:
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(2 * 1024 * 1024))
    emu.faults.drop_after_bytes = 100_000
    with pytest.raises(DeviceLostError) as caught:
        device.push(local, "/data/local/tmp/big.bin", 30)
    assert "--retries" in (caught.value.hint or "")


def test_a_stalled_device_times_out_with_its_own_error(emu, device) -> None:
    emu.faults.stall_seconds = 3.0
    with pytest.raises(DeviceTimeoutError) as caught:
        device.shell("echo late", 1.0)
    assert caught.value.timeout_s == 1.0
    assert "echo late" in caught.value.message
