"""Pure parts of the transports and device choice: no device needed."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

import pytest

from mobilize.device.connect import choose_serials
from mobilize.device.errors import DeviceChoiceError, NoDeviceError
from mobilize.device.keys import load_or_create_signer
from mobilize.device.parse import AdbDeviceEntry
from mobilize.device.transports import (
    EXIT_MARKER,
    is_tcp_serial,
    split_exit_marker,
    wrap_with_exit_marker,
)


def test_tcp_serials() -> None:
    assert is_tcp_serial("127.0.0.1:5555")
    assert is_tcp_serial("phone.local:40123")
    assert not is_tcp_serial("R58M123ABC")
    assert not is_tcp_serial("emulator-5554")
    assert not is_tcp_serial("usb:1-1")


def test_exit_marker_round_trip() -> None:
    command = "cat '/a b'"
    assert wrap_with_exit_marker(command).startswith(command + ";")
    result = split_exit_marker(command, f"hello\nworld\n{EXIT_MARKER}3\n")
    assert (result.stdout, result.exit_code) == ("hello\nworld\n", 3)


def test_missing_exit_marker_means_the_command_did_not_finish() -> None:
    assert split_exit_marker("x", "partial output").exit_code == 255


def entries(*pairs: tuple[str, str]) -> list[AdbDeviceEntry]:
    return [AdbDeviceEntry(serial, state, {}) for serial, state in pairs]


def test_explicit_serials_win_over_everything() -> None:
    chosen = choose_serials(["a", "b", "a"], "env", entries(("c", "device")))
    assert chosen == ["a", "b"]


def test_android_serial_when_no_serial_given() -> None:
    assert choose_serials([], "env-serial", entries(("x", "device"), ("y", "device"))) == [
        "env-serial"]


def test_the_only_ready_device() -> None:
    assert choose_serials([], None, entries(("x", "device"), ("y", "unauthorized"))) == ["x"]


def test_several_devices_and_none_chosen_lists_them() -> None:
    with pytest.raises(DeviceChoiceError) as caught:
        choose_serials([], None, entries(("phone-1", "device"), ("phone-2", "device")))
    assert "phone-1" in caught.value.message and "phone-2" in caught.value.message
    assert "--serial" in (caught.value.hint or "")
    assert caught.value.exit_code == 2


def test_no_device_mentions_the_unusable_ones() -> None:
    with pytest.raises(NoDeviceError) as caught:
        choose_serials([], None, entries(("R58", "unauthorized")))
    assert "R58  (unauthorized)" in caught.value.message


def test_all_devices_takes_every_ready_one() -> None:
    chosen = choose_serials([], None, entries(("a", "device"), ("b", "offline"), ("c", "device")),
                            all_devices=True)
    assert chosen == ["a", "c"]


def test_key_pair_is_created_private_and_reused(tmp_path: Path) -> None:
    key = tmp_path / "android" / "adbkey"
    signer = load_or_create_signer(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = (tmp_path / "android" / "adbkey.pub").read_text()
    assert public.split()[0] == signer.GetPublicKey().decode().split()[0]
    before = key.read_bytes()
    load_or_create_signer(key)
    assert key.read_bytes() == before  # reused, never regenerated


def test_quoting_keeps_hostile_names_as_one_argument() -> None:
    from mobilize.bench.app_control import am_start_command
    from mobilize.bench.config import BenchConfig

    hostile = "/data/local/tmp/mobilize/x-a b'c\";rm -rf $HOME`id`.tflite"
    words = shlex.split(am_start_command("run-1", hostile, BenchConfig()))
    assert words[words.index("model_path") + 1] == hostile
    assert words[:6] == ["am", "start", "-W", "-S", "-n", "dev.mobilize.bench/.BenchmarkActivity"]
    assert words[words.index("num_runs") + 1] == "50"


def test_usb_busy_is_recognised_from_libusb_and_explained() -> None:
    import usb1

    from mobilize.device.transports import _is_usb_busy, _usb_error

    busy = usb1.USBErrorBusy()
    assert _is_usb_busy(busy)
    error = _usb_error(busy, "R58M123")
    assert "LIBUSB_ERROR_BUSY" in error.message
    assert "adb kill-server" in (error.hint or "")
    assert not _is_usb_busy(usb1.USBErrorAccess())


def _busy_usb(serial, options, announce):
    import usb1

    from mobilize.device.transports import _usb_error

    raise _usb_error(usb1.USBErrorBusy(), serial)


def test_auto_falls_back_to_the_stock_client_when_usb_is_busy(monkeypatch, tmp_path) -> None:
    # No phone is attached here, so connect_usb is replaced by one that fails as libusb does
    # when an adb server holds the interface; the decision that follows is what is tested.
    import mobilize.device.connect as connect
    from mobilize.device.adb_client import AdbClientDevice
    from mobilize.device.transports import ConnectOptions, Transport

    monkeypatch.setattr(connect, "connect_usb", _busy_usb)
    monkeypatch.setattr(connect.shutil, "which", lambda name: f"/usr/bin/{name}")
    messages: list[str] = []
    device = connect.open_device("R58M123", ConnectOptions(tmp_path / "k"), messages.append)
    assert isinstance(device, AdbClientDevice) and device.serial == "R58M123"
    assert "using the stock adb client" in messages[0]

    from mobilize.device.errors import UsbBusyError

    with pytest.raises(UsbBusyError) as caught:
        connect.open_device("R58M123", ConnectOptions(tmp_path / "k", Transport.USB),
                            messages.append)
    assert "adb kill-server" in (caught.value.hint or "")


def test_run_as_refusals_end_the_wait_with_what_to_do() -> None:
    from mobilize.bench.app_control import _check_run_as
    from mobilize.device.errors import AppError

    with pytest.raises(AppError) as caught:
        _check_run_as("run-as: package not debuggable: dev.mobilize.bench\n", "R58")
    assert "assembleDebug" in (caught.value.hint or "")
    with pytest.raises(AppError, match="not installed"):
        _check_run_as("run-as: unknown package: dev.mobilize.bench\n", "R58")
    # A result that is not written yet is no refusal: the wait goes on.
    _check_run_as("cat: files/results/r.json: No such file or directory\n", "R58")
