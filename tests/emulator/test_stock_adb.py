"""Debian's stock adb client (29.0.6) against the emulated device: the proof of fidelity."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from mobilize.emulator.testing import running_emulator

pytestmark = [pytest.mark.emulator, pytest.mark.adb_client]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_connect_getprop_and_exit_codes(emulated_device, stock_adb) -> None:
    serial = emulated_device.serial
    assert stock_adb.connect(serial) == "device"
    listed = stock_adb.run("devices", "-l").stdout
    assert "model:Mobilize_Emulated_Phone" in listed and "device:emu_arm64" in listed
    model = stock_adb.run("-s", serial, "shell", "getprop", "ro.product.model")
    assert (model.returncode, model.stdout) == (0, "Mobilize Emulated Phone\n")
    # The stock client uses shell v2 (we advertise shell_v2), so exit codes come through.
    assert stock_adb.run("-s", serial, "shell", "exit 3").returncode == 3
    missing = stock_adb.run("-s", serial, "shell", "no-such-tool")
    assert missing.returncode == 127
    assert missing.stderr == "/system/bin/sh: no-such-tool: inaccessible or not found\n"
    failing = stock_adb.run("-s", serial, "shell", "ls /data/local/tmp/nothing-here")
    assert failing.returncode == 1 and "No such file or directory" in failing.stderr
    quoted = stock_adb.run("-s", serial, "shell", "echo", "'a;b  c'", "&&", "echo", "$?")
    assert quoted.stdout == "a;b  c\n0\n"
    exec_out = stock_adb.run("-s", serial, "exec-out", "echo raw")
    assert exec_out.stdout == "raw\n"


def _push_pull(stock_adb, serial: str, tmp_path: Path, size: int) -> None:
    local = tmp_path / "upload.bin"
    with open(local, "wb") as handle:
        for _ in range(size // (1 << 20)):
            handle.write(os.urandom(1 << 20))
        handle.write(os.urandom(size % (1 << 20)))
    pushed = stock_adb.run("-s", serial, "push", str(local), "/data/local/tmp/mobilize/upload.bin")
    assert pushed.returncode == 0, pushed.stderr
    assert "1 file pushed" in pushed.stdout
    on_device = stock_adb.run(
        "-s", serial, "shell", "sha256sum /data/local/tmp/mobilize/upload.bin"
    )
    assert on_device.stdout.split()[0] == sha256(local)
    back = tmp_path / "download.bin"
    pulled = stock_adb.run("-s", serial, "pull", "/data/local/tmp/mobilize/upload.bin", str(back))
    assert pulled.returncode == 0, pulled.stderr
    assert sha256(back) == sha256(local)


def test_push_and_pull_small_file(emulated_device, stock_adb, tmp_path) -> None:
    assert stock_adb.connect(emulated_device.serial) == "device"
    _push_pull(stock_adb, emulated_device.serial, tmp_path, 3 * 1024 * 1024 + 5)


@pytest.mark.slow
def test_push_and_pull_50_mb(emulated_device, stock_adb, tmp_path) -> None:
    assert stock_adb.connect(emulated_device.serial) == "device"
    _push_pull(stock_adb, emulated_device.serial, tmp_path, 50 * 1024 * 1024)


def test_full_disk_push_fails_with_the_phones_message(emulated_device, stock_adb, tmp_path) -> None:
    assert stock_adb.connect(emulated_device.serial) == "device"
    emulated_device.faults.disk_full = True
    local = tmp_path / "m.tflite"
    local.write_bytes(os.urandom(100_000))
    pushed = stock_adb.run(
        "-s", emulated_device.serial, "push", str(local), "/data/local/tmp/m.tflite"
    )
    assert pushed.returncode != 0
    assert "No space left on device" in pushed.stderr + pushed.stdout


def test_unknown_key_is_unauthorized_without_accept_new_keys(tmp_path, stock_adb) -> None:
    with running_emulator(tmp_path / "locked", accept_new_keys=False) as handle:
        assert (
            stock_adb.connect(handle.serial, want="unauthorized", deadline_s=10) == "unauthorized"
        )
        refused = stock_adb.run("-s", handle.serial, "shell", "echo hi")
        assert refused.returncode != 0 and "unauthorized" in refused.stderr
        assert "not accepted" in handle.logcat.text()


def test_pm_install_of_the_stand_in_apk_via_adb_install(
    emulated_device, stock_adb, tmp_path
) -> None:
    from mobilize.emulator.packages import make_stand_in_apk

    assert stock_adb.connect(emulated_device.serial) == "device"
    apk = make_stand_in_apk(tmp_path / "demo.apk", "com.example.demo", 12, "1.2")
    installed = stock_adb.run("-s", emulated_device.serial, "install", "-r", str(apk))
    assert installed.returncode == 0, installed.stderr
    assert "Success" in installed.stdout
    listed = stock_adb.run("-s", emulated_device.serial, "shell", "pm list packages com.example")
    assert listed.stdout == "package:com.example.demo\n"


@pytest.mark.slow
def test_a_120_mb_push_streams_through_bounded_memory(emulated_device, stock_adb, tmp_path) -> None:
    """Files of 100 MB and more pass chunk by chunk: the emulator's memory barely moves."""
    import threading

    import psutil

    assert stock_adb.connect(emulated_device.serial) == "device"
    local = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(local, "wb") as handle:
        for index in range(120):
            handle.write(block[index:] + block[:index])
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        pushed = stock_adb.run("-s", emulated_device.serial, "push", str(local), "/sdcard/big.bin")
    finally:
        done.set()
        sampler.join()
    assert pushed.returncode == 0, pushed.stderr
    assert sha256(emulated_device.host_path("/sdcard/big.bin")) == sha256(local)
    assert peak - baseline < 40 * 1024 * 1024, f"memory grew by {(peak - baseline) >> 20} MiB"


def test_shell_without_command_reads_commands_from_stdin(emulated_device, stock_adb) -> None:
    assert stock_adb.connect(emulated_device.serial) == "device"
    environment = dict(os.environ, HOME=str(stock_adb.home))
    session = subprocess.run(
        [
            stock_adb.executable,
            "-P",
            str(stock_adb.server_port),
            "-s",
            emulated_device.serial,
            "shell",
        ],
        input="getprop ro.build.version.sdk\nexit 4",
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (session.returncode, session.stdout) == (4, "34\n")
