"""One device, one lock, whatever name it is reached by."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilize.cli import main
from mobilize.device.lock import DeviceBusyError, device_lock, identity_key, resolved_address
from mobilize.emulator.testing import running_emulator


def test_loopback_names_resolve_to_one_address() -> None:
    assert resolved_address("127.0.0.1:5555") == resolved_address("localhost:5555")
    assert resolved_address("127.0.0.1:5555") != resolved_address("127.0.0.1:5556")
    assert resolved_address("R58M123") is None  # a USB serial has no address


def test_identity_is_the_serial_number_else_the_address() -> None:
    # One phone over USB and over TCP: its serial number names it.
    assert identity_key("R58M123", "R58M123") == identity_key("192.168.1.20:5555", "R58M123")
    assert identity_key("R58M123", "R58M123") != identity_key("R58M999", "R58M999")
    # No serial number, or one that many cheap boards share: the resolved address.
    assert identity_key("127.0.0.1:5555", None) == identity_key("localhost:5555", "")
    assert identity_key("127.0.0.1:5555", "0123456789ABCDEF") == identity_key(
        "localhost:5555", "0123456789ABCDEF")
    assert identity_key("127.0.0.1:5555", None) != identity_key("127.0.0.1:5556", None)


def test_one_key_one_lock_whatever_the_serial(tmp_path: Path) -> None:
    key = identity_key("127.0.0.1:5555", "EMU1")
    with device_lock("127.0.0.1:5555", 1.0, tmp_path, key=key):
        with pytest.raises(DeviceBusyError) as caught:
            with device_lock("localhost:5555", 0.3, tmp_path, key=key):
                pass
    assert "another benchmark" in caught.value.message
    assert "localhost:5555" in caught.value.message  # the name the user gave
    with device_lock("localhost:5555", 0.1, tmp_path, key=key):  # free once released
        pass


def test_cancel_stops_the_wait(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with device_lock("dev", 5.0, tmp_path):
        with pytest.raises(DeviceBusyError):
            with device_lock("dev", 30.0, tmp_path, cancel=cancel):
                pass


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[object]:
    with running_emulator(tmp_path / "device", accept_new_keys=True) as handle:
        yield handle


@pytest.mark.emulator
def test_two_names_of_one_device_queue_and_both_runs_survive(emu, tmp_path, tiny_tflite,
                                                             capsys) -> None:
    names = [emu.serial, f"localhost:{emu.port}"]
    outputs = {name: tmp_path / f"{index}.json" for index, name in enumerate(names)}
    codes: dict[str, int] = {}

    def bench(name: str) -> None:
        codes[name] = main([
            "bench", str(tiny_tflite), "--serial", name,
            "--adb-key", str(tmp_path / "keys" / "adbkey"), "--db", str(tmp_path / "r.db"),
            "--runs", "15000", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
            "--auth-timeout", "5", "--timeout", "120", "--json", str(outputs[name])])

    threads = [threading.Thread(target=bench, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    err = capsys.readouterr().err
    assert codes == {name: 0 for name in names}, err  # neither run was killed by the other
    assert "waiting for another benchmark" in err
    windows = sorted(
        (run["result"]["started_at"], run["result"]["finished_at"])
        for out in outputs.values() for run in json.loads(out.read_text())["runs"]
    )
    assert windows[0][1] <= windows[1][0]  # one after the other
