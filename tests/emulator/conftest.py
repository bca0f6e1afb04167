"""Fixtures for the emulated device's tests: RSA keys, a tiny model, the stock adb client."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class HostKey:
    private_path: Path

    @property
    def public_line(self) -> str:
        return Path(str(self.private_path) + ".pub").read_text().strip()

    def signer(self):
        from adb_shell.auth.sign_pythonrsa import PythonRSASigner

        return PythonRSASigner.FromRSAKeyPath(str(self.private_path))


def _make_key(folder: Path) -> HostKey:
    from adb_shell.auth.keygen import keygen

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "adbkey"
    keygen(str(path))
    return HostKey(path)


@pytest.fixture(scope="session")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> HostKey:
    return _make_key(tmp_path_factory.mktemp("host-key"))


@pytest.fixture(scope="session")
def other_host_key(tmp_path_factory: pytest.TempPathFactory) -> HostKey:
    return _make_key(tmp_path_factory.mktemp("other-host-key"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 conv + mean model made by the real TFLite converter."""
    import numpy as np
    import tensorflow as tf

    kernel = np.random.RandomState(0).randn(3, 3, 3, 8).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)])
    def generator(image):
        features = tf.nn.relu(tf.nn.conv2d(image, tf.constant(kernel), 1, "SAME"))
        return tf.reduce_mean(features, axis=-1, keepdims=True)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [generator.get_concrete_function()], generator
    )
    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    path.write_bytes(converter.convert())
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StockAdb:
    """Debian's adb client with its own server port and HOME (so its own adbkey)."""

    executable: str
    server_port: int
    home: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        environment = dict(os.environ, HOME=str(self.home))
        environment.pop("ANDROID_SERIAL", None)
        return subprocess.run(
            [self.executable, "-P", str(self.server_port), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def device_state(self, serial: str) -> str | None:
        for line in self.run("devices").stdout.splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == serial:
                return fields[1]
        return None

    def connect(self, serial: str, want: str = "device", deadline_s: float = 15) -> str | None:
        self.run("connect", serial)
        deadline = time.monotonic() + deadline_s
        state = None
        while time.monotonic() < deadline:
            state = self.device_state(serial)
            if state == want:
                return state
            time.sleep(0.2)
        return state


@pytest.fixture
def stock_adb(tmp_path: Path) -> Iterator[StockAdb]:
    executable = shutil.which("adb")
    if executable is None:
        pytest.skip("Debian's adb client is not installed (apt-get install adb)")
    home = tmp_path / "adb-home"
    home.mkdir()
    client = StockAdb(executable, free_port(), home)
    client.run("start-server")
    try:
        yield client
    finally:
        client.run("kill-server", timeout=30)
