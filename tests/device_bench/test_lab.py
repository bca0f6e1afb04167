"""A lab of real adb servers (Debian's stock `adb`), each with emulated phones connected.

Every server runs on its own loopback port with its own HOME (so its own adbkey) and
ADB_EMU=0 (it does not scan 5555-5585 for emulators, so no one else's emulated phone joins
in); each is killed at the end (`adb -P PORT kill-server`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from mobilize.cli import main
from mobilize.emulator.testing import EmulatorHandle, running_emulator

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.adb_client,
    pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb client is not installed"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """One stock adb server on 127.0.0.1:PORT."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        home.mkdir(parents=True)
        self.env = {**os.environ, "HOME": str(home), "ADB_EMU": "0"}
        for name in ("ANDROID_SERIAL", "ADB_SERVER_SOCKET", "ANDROID_ADB_SERVER_PORT"):
            self.env.pop(name, None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def adb(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["adb", "-P", str(self.port), *args], env=self.env, text=True,
                              capture_output=True, timeout=30, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        assert self.adb("start-server").returncode == 0

    def kill(self) -> None:
        self.adb("kill-server")

    def request(self, service: str) -> str:
        """One host service of the adb server protocol (`host:emulator:PORT`, which the
        Android emulator sends to announce itself, answers nothing)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(b"%04x%s" % (len(service), service.encode()))
            status = sock.recv(4)
            if service.startswith("host:emulator:"):
                return ""
            assert status == b"OKAY", status
            return sock.recv(int(sock.recv(4), 16)).decode()

    def states(self) -> dict[str, str]:
        rows = [line.split() for line in self.request("host:devices").splitlines()]
        return {row[0]: row[1] for row in rows if len(row) >= 2}

    def wait_for(self, serial: str, want: str = "device") -> None:
        deadline = time.monotonic() + 20
        while self.states().get(serial) != want:
            assert time.monotonic() < deadline, (serial, self.states())
            time.sleep(0.2)

    def connect(self, emu: EmulatorHandle, want: str = "device") -> None:
        self.adb("connect", emu.serial)
        self.wait_for(emu.serial, want)


@pytest.fixture
def lab(tmp_path: Path, monkeypatch) -> Iterator[ExitStack]:
    for name in ("ANDROID_SERIAL", "ADB_SERVER_SOCKET", "ANDROID_ADB_SERVER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with ExitStack() as stack:
        yield stack


def start_server(stack: ExitStack, home: Path) -> LabServer:
    server = LabServer(home)
    stack.callback(server.kill)
    server.start()
    return server


def emulator(stack: ExitStack, root: Path, accept: bool = True) -> EmulatorHandle:
    return stack.enter_context(running_emulator(root, accept_new_keys=accept))


@pytest.mark.slow
def test_one_bench_across_two_adb_servers_stores_every_run_with_its_server(
    tmp_path: Path, tiny_tflite: Path, lab: ExitStack, capsys
) -> None:
    servers = [start_server(lab, tmp_path / f"home{i}") for i in range(2)]
    phones = {}
    for i, server in enumerate(servers):
        for j in range(2):
            emu = emulator(lab, tmp_path / f"phone{i}{j}")
            server.connect(emu)
            phones[emu.serial] = server.address
    db = tmp_path / "lab.db"
    lab_flags = [arg for server in servers for arg in ("--adb-server", server.address)]
    started = time.monotonic()
    code = main(["bench", str(tiny_tflite), *lab_flags, "--all-devices", "--transport", "adb",
                 "--runs", "3", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
                 "--auth-timeout", "20", "--db", str(db), "--json", str(tmp_path / "runs.json")])
    wall_s = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 0, err
    with sqlite3.connect(db) as connection:
        stored = connection.execute("SELECT serial, status, harness_json FROM runs").fetchall()
    by_serial = {serial: json.loads(harness)["adb_server"] for serial, status, harness in stored}
    assert by_serial == phones and len(stored) == 4
    assert {status for _, status, _ in stored} == {"ok"}
    runs = json.loads((tmp_path / "runs.json").read_text())["runs"]
    assert {run["serial"]: run["harness"]["adb_server"] for run in runs} == phones
    code = main(["devices", *lab_flags, "--transport", "adb", "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    listed = json.loads(captured.out)["devices"]
    assert {row["serial"]: row["adb_server"] for row in listed} == phones
    assert {row["model"] for row in listed} == {"Mobilize Emulated Phone"}
    with capsys.disabled():  # the lab's figures, shown with -s
        print(f"\nlab: {len(phones)} devices on {len(servers)} adb servers, "
              f"{len(stored)} runs stored, bench {wall_s:.1f} s")


def test_emulator_serials_and_unusable_devices_on_one_adb_server(
    tmp_path: Path, tiny_tflite: Path, lab: ExitStack, capsys
) -> None:
    server = start_server(lab, tmp_path / "home")
    # The server registers one phone as emulator-(PORT-1), as the Android emulator has it do,
    # and that phone once more as 127.0.0.1:PORT: one adbd, listed twice.
    twice = emulator(lab, tmp_path / "twice")
    server.request(f"host:emulator:{twice.port}")
    alias = f"emulator-{twice.port - 1}"
    server.wait_for(alias)
    server.connect(twice)
    other = emulator(lab, tmp_path / "other")
    server.request(f"host:emulator:{other.port}")
    server.wait_for(f"emulator-{other.port - 1}")
    flags = ["--adb-server", server.address, "--auth-timeout", "20"]

    code = main(["devices", *flags, "--json", "-"])  # --transport auto: found on the server
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)["devices"]
    assert len(rows) == 2 and f"emulator-{other.port - 1}" in {row["serial"] for row in rows}
    assert {row["model"] for row in rows} == {"Mobilize Emulated Phone"}

    code = main(["bench", str(tiny_tflite), *flags, "--serial", alias, "--runs", "2",
                 "--warmup", "0", "--threads", "1", "--cooldown-timeout", "5",
                 "--db", str(tmp_path / "r.db"), "--json", str(tmp_path / "one.json")])
    err = capsys.readouterr().err
    assert code == 0, err
    run = json.loads((tmp_path / "one.json").read_text())["runs"][0]
    assert (run["serial"], run["harness"]["adb_server"]) == (alias, server.address)

    refused = emulator(lab, tmp_path / "refused", accept=False)
    server.connect(refused, want="unauthorized")
    code = main(["devices", *flags, "--json", "-"])
    captured = capsys.readouterr()
    assert code == 3
    errors = {row["serial"]: row["error"] for row in json.loads(captured.out)["devices"]}
    assert errors[refused.serial].startswith("unauthorized")
    assert sum(error is None for error in errors.values()) == 2


def test_the_stock_clients_variables_name_the_adb_server(
    tmp_path: Path, lab: ExitStack, monkeypatch, capsys
) -> None:
    server = start_server(lab, tmp_path / "home")
    emu = emulator(lab, tmp_path / "phone")
    server.connect(emu)
    for name, value in (("ADB_SERVER_SOCKET", f"tcp:{server.address}"),
                        ("ANDROID_ADB_SERVER_PORT", str(server.port))):
        monkeypatch.setenv(name, value)
        code = main(["devices", "--transport", "adb", "--json", "-"])
        captured = capsys.readouterr()
        monkeypatch.delenv(name)
        assert code == 0, (name, captured.err)
        assert [row["serial"] for row in json.loads(captured.out)["devices"]] == [emu.serial]
