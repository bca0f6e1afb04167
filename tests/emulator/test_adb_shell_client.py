"""adb-shell's AdbDeviceTcp (the harness's own transport) against the emulated device."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.exceptions import (
    AdbConnectionError,
    AdbTimeoutError,
    PushFailedError,
    TcpTimeoutException,
)

from mobilize.emulator.testing import running_emulator

pytestmark = pytest.mark.emulator


def connect(handle, key, *, timeout_s: float = 10, auth_timeout_s: float = 5) -> AdbDeviceTcp:
    device = AdbDeviceTcp(handle.host, handle.port, default_transport_timeout_s=timeout_s)
    device.connect(rsa_keys=[key.signer()], auth_timeout_s=auth_timeout_s)
    return device


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_connect_shell_and_exit_codes_via_shell_v2(emulated_device, host_key) -> None:
    device = connect(emulated_device, host_key)
    try:
        assert device.available
        assert device.shell("getprop ro.product.model") == "Mobilize Emulated Phone\n"
        assert device.shell("nosuch; echo rc=$?") == (
            "/system/bin/sh: nosuch: inaccessible or not found\nrc=127\n"
        )
        # The shell protocol (v2) frames stdout, stderr and the exit code.
        raw = device._service(b"shell,v2,raw", b"echo out; echo err >&2; exit 5", decode=False)
        assert raw == (
            b"\x01\x04\x00\x00\x00out\n\x02\x04\x00\x00\x00err\n\x03\x01\x00\x00\x00\x05"
        )
    finally:
        device.close()


def test_push_pull_list_stat_round_trip(emulated_device, host_key, tmp_path) -> None:
    local = tmp_path / "blob.bin"
    local.write_bytes(os.urandom(5 * 1024 * 1024 + 17))
    device = connect(emulated_device, host_key)
    try:
        device.push(str(local), "/data/local/tmp/new/dir/blob.bin")
        assert device.shell("sha256sum /data/local/tmp/new/dir/blob.bin").split()[0] == sha256(
            local
        )
        back = tmp_path / "back.bin"
        device.pull("/data/local/tmp/new/dir/blob.bin", str(back))
        assert sha256(back) == sha256(local)
        names = {entry.filename.decode() for entry in device.list("/data/local/tmp/new/dir")}
        assert names == {".", "..", "blob.bin"}
        mode, size, _ = device.stat("/data/local/tmp/new/dir/blob.bin")
        assert size == local.stat().st_size and mode & 0o170000 == 0o100000
        assert device.stat("/data/local/tmp/absent") == (0, 0, 0)
    finally:
        device.close()


def test_key_is_remembered_after_being_allowed(tmp_path, host_key) -> None:
    keys = tmp_path / "adb_keys"
    with running_emulator(tmp_path / "a", accept_new_keys=True, trusted_keys_file=keys) as handle:
        connect(handle, host_key).close()
    assert host_key.public_line.split()[0] in keys.read_text()
    with running_emulator(tmp_path / "b", accept_new_keys=False, trusted_keys_file=keys) as handle:
        device = connect(handle, host_key)
        assert device.shell("echo trusted") == "trusted\n"
        device.close()


def test_unknown_key_stays_unauthorized_without_accept_new_keys(tmp_path, host_key) -> None:
    with running_emulator(tmp_path / "locked", accept_new_keys=False) as handle:
        with pytest.raises(TcpTimeoutException):
            connect(handle, host_key, auth_timeout_s=1)
        assert "not accepted" in handle.logcat.text()
        assert not (handle.device.trusted_keys.path.exists())


def test_refuse_auth_fault_rejects_even_a_trusted_key(emulated_device, host_key) -> None:
    connect(emulated_device, host_key).close()  # trusted from now on
    emulated_device.faults.refuse_auth = True
    with pytest.raises(TcpTimeoutException):
        connect(emulated_device, host_key, auth_timeout_s=1)
    emulated_device.faults.refuse_auth = False
    connect(emulated_device, host_key).close()


def test_drop_connection_after_n_bytes_then_retry_succeeds(
    emulated_device, host_key, tmp_path
) -> None:
    local = tmp_path / "model.bin"
    local.write_bytes(os.urandom(2 * 1024 * 1024))
    emulated_device.faults.drop_after_bytes = 300_000
    emulated_device.faults.drops_left = 1
    device = connect(emulated_device, host_key)
    # adb-shell notices a closed socket only as a read that times out.
    with pytest.raises((AdbConnectionError, AdbTimeoutError, TcpTimeoutException, OSError)):
        device.push(str(local), "/data/local/tmp/model.bin", read_timeout_s=2)
    device.close()
    assert not emulated_device.host_path("/data/local/tmp/model.bin").exists()
    assert emulated_device.faults.drops_left == 0
    device = connect(emulated_device, host_key)
    device.push(str(local), "/data/local/tmp/model.bin")
    assert sha256(emulated_device.host_path("/data/local/tmp/model.bin")) == sha256(local)
    device.close()


def test_full_disk_fails_the_push_like_a_phone(emulated_device, host_key, tmp_path) -> None:
    local = tmp_path / "model.bin"
    local.write_bytes(os.urandom(200_000))
    emulated_device.faults.disk_full = True
    device = connect(emulated_device, host_key)
    with pytest.raises(PushFailedError, match="No space left on device"):
        device.push(str(local), "/data/local/tmp/model.bin")
    device.close()
    assert not emulated_device.host_path("/data/local/tmp/model.bin").exists()


def test_stalled_reply_times_out_the_client(emulated_device, host_key) -> None:
    device = connect(emulated_device, host_key)
    emulated_device.faults.stall_seconds = 2.0
    emulated_device.faults.stall_match = "getprop"
    started = time.monotonic()
    with pytest.raises(TcpTimeoutException):
        device.shell("getprop ro.product.model", transport_timeout_s=0.5)
    assert time.monotonic() - started < 2.0
    device.close()
    device = connect(emulated_device, host_key)
    assert device.shell("echo not stalled") == "not stalled\n"
    device.close()


def test_two_emulators_side_by_side(tmp_path, host_key) -> None:
    other_profile = {"properties": {"ro.product.model": "Second Phone"}}
    with (
        running_emulator(tmp_path / "one") as first,
        running_emulator(tmp_path / "two", profile=other_profile) as second,
    ):
        assert first.port != second.port
        assert first.serial == f"127.0.0.1:{first.port}"
        models = []
        for handle in (first, second):
            device = connect(handle, host_key)
            models.append(device.shell("getprop ro.product.model").strip())
            device.close()
        assert models == ["Mobilize Emulated Phone", "Second Phone"]


def test_binds_loopback_only(emulated_device) -> None:
    from mobilize.emulator.device import AdbServer

    assert emulated_device.server._listener.getsockname()[0] == "127.0.0.1"
    with pytest.raises(ValueError, match="loopback"):
        AdbServer(emulated_device.device, port=0, host="0.0.0.0")
