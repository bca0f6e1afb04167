"""The stock `adb` client transport against the emulated device, with a private adb server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilize.cli import main
from mobilize.emulator.testing import running_emulator

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.adb_client,
    pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb client is not installed"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def adb_server_port() -> Iterator[int]:
    """A private adb server for this test, killed afterwards (never the user's 5037)."""
    port = free_port()
    yield port
    subprocess.run(["adb", "-P", str(port), "kill-server"], capture_output=True, timeout=30)


def test_bench_through_the_stock_client(tmp_path: Path, tiny_tflite: Path, adb_server_port: int,
                                        capsys) -> None:
    with running_emulator(tmp_path / "device", accept_new_keys=True) as emu:
        out = tmp_path / "runs.json"
        code = main(["bench", str(tiny_tflite), "--serial", emu.serial, "--transport", "adb",
                     "--adb-server-port", str(adb_server_port), "--db", str(tmp_path / "r.db"),
                     "--json", str(out), "--runs", "5", "--warmup", "1", "--threads", "1",
                     "--cooldown-timeout", "5", "--auth-timeout", "20"])
        err = capsys.readouterr().err
    assert code == 0, err
    result = json.loads(out.read_text())["runs"][0]["result"]
    assert result["status"] == "ok" and len(result["latency"]["samples"]) == 5


def test_devices_found_through_a_running_adb_server(tmp_path: Path, adb_server_port: int,
                                                     monkeypatch, capsys) -> None:
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    with running_emulator(tmp_path / "device", accept_new_keys=True) as emu:
        subprocess.run(["adb", "-P", str(adb_server_port), "connect", emu.serial],
                       capture_output=True, timeout=30, check=True)
        # `adb connect` returns before the handshake ends: the server lists the phone as
        # offline until then (CI caught `devices` in that gap). Wait as a user would.
        subprocess.run(["adb", "-P", str(adb_server_port), "-s", emu.serial, "wait-for-device"],
                       capture_output=True, timeout=60, check=True)
        code = main(["devices", "--transport", "adb", "--adb-server-port", str(adb_server_port),
                     "--auth-timeout", "20"])
        captured = capsys.readouterr()
    assert code == 0, captured.err
    assert emu.serial in captured.out
    assert "Mobilize Emulated Phone" in captured.out


def test_a_model_named_like_an_option_is_pushed_as_a_file(
    tmp_path: Path, tiny_tflite: Path, adb_server_port: int, monkeypatch, capsys
) -> None:
    # `adb push -tiny.tflite DEST` would read `-tiny.tflite` as an option (adb 29: exit 1).
    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_tflite, tmp_path / "-tiny.tflite")
    with running_emulator(tmp_path / "device", accept_new_keys=True) as emu:
        out = tmp_path / "runs.json"
        code = main(["bench", "--serial", emu.serial, "--transport", "adb",
                     "--adb-server-port", str(adb_server_port), "--db", str(tmp_path / "r.db"),
                     "--json", str(out), "--runs", "2", "--warmup", "0", "--threads", "1",
                     "--cooldown-timeout", "5", "--auth-timeout", "20", "--", "-tiny.tflite"])
        err = capsys.readouterr().err
    assert code == 0, err
    run = json.loads(out.read_text())["runs"][0]
    assert (run["model_name"], run["result"]["status"]) == ("-tiny.tflite", "ok")
    assert run["harness"]["adb_server"] == f"localhost:{adb_server_port}"
