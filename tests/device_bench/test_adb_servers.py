"""adb servers without a phone: addresses, the variables, device identity, routing by where a
serial was found, the client's argument lists and the server protocol (a fake server)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

import mobilize.device.adb_client as adb_client
import mobilize.device.connect as connect
from mobilize.device.adb_client import (
    AdbClientDevice,
    parse_adb_server,
    query_adb_server,
    resolve_adb_servers,
)
from mobilize.device.connect import choose_targets, device_identity, discover
from mobilize.device.errors import AdbError, DeviceChoiceError, NoDeviceError, UsageError
from mobilize.device.parse import AdbDeviceEntry
from mobilize.device.transports import AdbServerAddress, ConnectOptions, Transport

LOCAL = AdbServerAddress("localhost", 5037)
LAB_A = AdbServerAddress("10.0.0.7", 5037)
LAB_B = AdbServerAddress("10.0.0.8", 5038)


def test_adb_server_addresses() -> None:
    assert parse_adb_server("10.0.0.7:5037") == LAB_A
    assert parse_adb_server("tcp:10.0.0.7:5037") == LAB_A
    assert parse_adb_server("tcp:5040") == AdbServerAddress("localhost", 5040)
    assert parse_adb_server("[::1]:5037") == AdbServerAddress("::1", 5037)
    assert str(AdbServerAddress("::1", 5037)) == "[::1]:5037"
    for bad in ("host:", "host:99999", "localfilesystem:/tmp/adb", ""):
        with pytest.raises(UsageError):
            parse_adb_server(bad)


def test_the_command_line_then_the_stock_clients_variables() -> None:
    socket_env = {"ADB_SERVER_SOCKET": "tcp:10.0.0.7:5037", "ANDROID_ADB_SERVER_PORT": "6000"}
    assert resolve_adb_servers([], None, {}) == (LOCAL, ())
    assert resolve_adb_servers([], None, {"ANDROID_ADB_SERVER_PORT": "6000"}) == (
        AdbServerAddress("localhost", 6000), ())
    assert resolve_adb_servers([], None, socket_env) == (LAB_A, (LAB_A,))
    assert resolve_adb_servers([], 5040, socket_env) == (AdbServerAddress("localhost", 5040), ())
    assert resolve_adb_servers(["10.0.0.8:5038", "10.0.0.7:5037", "10.0.0.8:5038"], None,
                               socket_env) == (LAB_B, (LAB_B, LAB_A))
    with pytest.raises(UsageError, match="ANDROID_ADB_SERVER_PORT"):
        resolve_adb_servers([], None, {"ANDROID_ADB_SERVER_PORT": "x"})


def test_one_adbd_has_one_identity_per_machine() -> None:
    assert device_identity("emulator-5554", LOCAL) == device_identity("127.0.0.1:5555", LOCAL)
    assert device_identity("localhost:5555", None) == device_identity("emulator-5554", LOCAL)
    # Another host's emulator and loopback devices are that host's own...
    assert device_identity("emulator-5554", LAB_A) != device_identity("emulator-5554", LOCAL)
    assert device_identity("R58M123", LAB_A) != device_identity("R58M123", LAB_B)
    # ...a phone on the network is the same phone whichever server reaches it.
    assert device_identity("192.168.1.20:5555", LAB_A) == device_identity(
        "192.168.1.20:5555", LOCAL)


def _entry(serial: str, state: str = "device", server: AdbServerAddress | None = None):
    return AdbDeviceEntry(serial, state, {"adb_server": str(server)} if server else {})


def _options(*servers: AdbServerAddress, transport: Transport = Transport.AUTO):
    return ConnectOptions(Path("/nonexistent/adbkey"), transport, adb_servers=servers)


def test_discovery_asks_every_named_server_and_keeps_one_entry_per_device(monkeypatch) -> None:
    listings = {
        LAB_A: [_entry("emulator-5554"), _entry("127.0.0.1:5555"), _entry("R58", "offline")],
        LAB_B: [_entry("emulator-5554", "unauthorized"), _entry("192.168.1.20:5555")],
    }
    monkeypatch.setattr(connect, "list_usb_serials", lambda: ["R58"])
    monkeypatch.setattr(connect, "list_adb_server_devices",
                        lambda options, server: listings[server])
    found = discover(_options(LAB_A, LAB_B))
    assert [(e.serial, e.state, e.details.get("adb_server")) for e in found] == [
        ("R58", "device", None),
        ("emulator-5554", "device", "10.0.0.7:5037"),
        ("R58", "offline", "10.0.0.7:5037"),
        ("emulator-5554", "unauthorized", "10.0.0.8:5038"),
        ("192.168.1.20:5555", "device", "10.0.0.8:5038"),
    ]
    assert found[1].details["aliases"] == "127.0.0.1:5555"


def test_targets_are_opened_where_they_were_found() -> None:
    options = _options(LAB_A, LAB_B)
    available = [_entry("emulator-5554", server=LAB_A), _entry("emulator-5554", server=LAB_B),
                 _entry("R58", "offline", LAB_B), _entry("usb-phone")]
    every = choose_targets([], None, available, options, all_devices=True)
    assert [(t.serial, t.adb_server, t.options.transport) for t in every] == [
        ("emulator-5554", "10.0.0.7:5037", Transport.ADB),
        ("emulator-5554", "10.0.0.8:5038", Transport.ADB),
        ("usb-phone", None, Transport.AUTO),
    ]
    assert (every[1].options.adb_server_host, every[1].options.adb_server_port) == (
        "10.0.0.8", 5038)
    assert len({t.key for t in every}) == 3
    with pytest.raises(DeviceChoiceError, match="several adb servers"):
        choose_targets(["emulator-5554"], None, available, options)
    # An alias names its device; an unlisted HOST:PORT is `adb connect`ed by the first server.
    aliased = AdbDeviceEntry("emulator-5554", "device",
                             {"adb_server": str(LAB_A), "aliases": "127.0.0.1:5555"})
    [alias] = choose_targets(["127.0.0.1:5555"], None, [aliased], options)
    assert (alias.serial, alias.adb_server) == ("127.0.0.1:5555", "10.0.0.7:5037")
    [tcp] = choose_targets(["192.168.1.9:5555"], None, [], options)
    assert (tcp.adb_server, tcp.options.transport) == ("10.0.0.7:5037", Transport.ADB)
    with pytest.raises(NoDeviceError, match="no adb server lists R99"):
        choose_targets(["R99"], None, [], options)
    [spelled] = choose_targets(["R99"], None, [], _options())
    assert (spelled.adb_server, spelled.options.transport) == (None, Transport.AUTO)


def test_auto_opens_a_serial_missing_on_usb_through_the_server_that_lists_it(
    monkeypatch, tmp_path
) -> None:
    def no_usb(serial, options, announce):
        raise NoDeviceError("no Android device found on USB")

    monkeypatch.setattr(connect, "connect_usb", no_usb)
    monkeypatch.setattr(connect.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(connect, "adb_server_running", lambda server: True)
    monkeypatch.setattr(connect, "list_adb_server_devices",
                        lambda options, server=None: [_entry("emulator-5554")])
    messages: list[str] = []
    device = connect.open_device("emulator-5554", ConnectOptions(tmp_path / "k"),
                                 messages.append)
    assert isinstance(device, AdbClientDevice) and device.adb_server == LOCAL
    assert "lists it" in messages[0]
    with pytest.raises(NoDeviceError):
        connect.open_device("R58", ConnectOptions(tmp_path / "k"), messages.append)


def test_the_client_gets_the_server_and_paths_that_are_never_options(
    monkeypatch, tmp_path
) -> None:
    calls: list[list[str]] = []

    def fake_client(argv, timeout, *, serial, command):
        import subprocess

        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "ok\n__mobilize_exit_code=0\n", "")

    monkeypatch.setattr(adb_client, "run_adb_client", fake_client)
    monkeypatch.chdir(tmp_path)
    device = AdbClientDevice("emulator-5554", "adb", 5038, "10.0.0.8")
    device.push(Path("-model.tflite"), "/data/local/tmp/mobilize/-model.tflite", 5)
    device.pull("/data/local/tmp/r.json", Path("-r.json"), 5)
    device.shell("-x", 5)
    server = ["adb", "-H", "10.0.0.8", "-P", "5038", "-s", "emulator-5554"]
    assert calls[0] == [*server, "push", "--", str(tmp_path / "-model.tflite"),
                        "/data/local/tmp/mobilize/-model.tflite"]
    assert calls[1] == [*server, "pull", "--", "/data/local/tmp/r.json", str(tmp_path / "-r.json")]
    assert calls[2][:len(server) + 2] == [*server, "shell", "--"]


def _fake_server(answer: bytes) -> tuple[AdbServerAddress, list[bytes]]:
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                requests.append(connection.recv(4096))
                connection.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return AdbServerAddress("127.0.0.1", listener.getsockname()[1]), requests


def test_the_adb_server_protocol() -> None:
    rows = b"emulator-5554          device product:x model:Pixel_7 transport_id:1\n"
    server, requests = _fake_server(b"OKAY%04x" % len(rows) + rows)
    assert query_adb_server(server, "host:devices-l") == rows.decode()
    assert requests == [b"000ehost:devices-l"]
    server, _ = _fake_server(b"FAIL0014unknown host service")
    with pytest.raises(AdbError, match="unknown host service"):
        query_adb_server(server, "host:nothing")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = AdbServerAddress("127.0.0.1", sock.getsockname()[1])
    with pytest.raises(NoDeviceError, match="no adb server answers"):
        query_adb_server(closed, "host:devices-l")


def test_a_bad_adb_server_address_is_a_usage_error(capsys) -> None:
    from mobilize.cli import main

    assert main(["devices", "--adb-server", "nowhere:port"]) == 2
    assert "--adb-server" in capsys.readouterr().err


def test_an_adb_server_that_does_not_answer_is_named(capsys) -> None:
    from mobilize.cli import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["devices", "--adb-server", f"127.0.0.1:{port}"]) == 3
    assert f"no adb server answers at 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_server_listing_only_an_unusable_phone_shows_it_with_what_to_do(capsys) -> None:
    # The row is the one from tests/device_bench/captured/real/
    # adb_devices__scrcpy-354-unauthorized-daemon-noise.txt (a real Huawei, serial masked).
    from mobilize.cli import main

    rows = b"LHS7N*************        unauthorized\n"
    server, _ = _fake_server(b"OKAY%04x" % len(rows) + rows)
    code = main(["devices", "--adb-server", f"{server.host}:{server.port}"])
    out = capsys.readouterr().out
    assert code == 3, out  # a listed phone that cannot be used is a device error, not a crash
    assert "LHS7N" in out and 'tap "Allow"' in " ".join(out.split())
