"""Transport throughput and harness overhead against the emulated device, in one run.

    python benchmarks/transport.py [--size-mb 50] [--repeats 3] [--append docs/benchmarks.md]

1. Push throughput (MB/s) of one file through adb-shell's TCP transport (as the harness
   uses it) and through Debian's stock `adb` client (with its own private server), to the
   same emulated device, which runs as a separate process so neither client shares its CPU
   time with the device's Python threads. Each push is checked by sha256 on the device.
2. Harness overhead: the wall time of `mobilize bench` on N tiny models minus the time the
   app spent measuring (init, first inference, warm-ups and timed runs), per model.

Targets (issue 4): adb-shell >= half of the stock client's throughput; overhead < 2 s/model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mobilize.device import ops  # noqa: E402
from mobilize.device.transports import ConnectOptions, connect_tcp  # noqa: E402

REMOTE = "/data/local/tmp/transport_bench.bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def emulator_process(root: Path) -> Iterator[str]:
    """`mobilize emulator` in its own process; yields its serial."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mobilize.cli", "emulator", "--port", str(port), "--root",
         str(root), "--accept-new-keys"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    message = f"the emulator did not start: {process.stderr.read()}"
                    raise SystemExit(message) from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def push_adb_shell(serial: str, key: Path, local: Path) -> float:
    device = connect_tcp(serial, ConnectOptions(key_path=key, auth_timeout_s=10), print)
    try:
        started = time.perf_counter()
        device.push(local, REMOTE, timeout=120)
        elapsed = time.perf_counter() - started
        check_remote(device, local)
        return elapsed
    finally:
        device.close()


def push_stock_adb(serial: str, server_port: int, local: Path) -> float:
    adb = ["adb", "-P", str(server_port)]
    started = time.perf_counter()
    subprocess.run([*adb, "-s", serial, "push", str(local), REMOTE], check=True,
                   capture_output=True, timeout=300)
    return time.perf_counter() - started


def check_remote(device, local: Path) -> None:
    if ops.remote_sha256(device, REMOTE) != ops.local_sha256(local):
        raise SystemExit("the pushed file differs from the local one")


def measure_push(serial: str, key: Path, size_mb: int, repeats: int, work: Path) -> dict:
    local = work / "payload.bin"
    local.write_bytes(os.urandom(size_mb * 1024 * 1024))
    shell_times = [push_adb_shell(serial, key, local) for _ in range(repeats)]
    stock_times: list[float] = []
    if shutil.which("adb"):
        server_port = free_port()
        adb = ["adb", "-P", str(server_port)]
        try:
            subprocess.run([*adb, "connect", serial], check=True, capture_output=True,
                           timeout=60)
            wait_for_client(adb, serial)
            stock_times = [push_stock_adb(serial, server_port, local) for _ in range(repeats)]
            device = connect_tcp(serial, ConnectOptions(key_path=key), print)
            check_remote(device, local)
            device.close()
        finally:
            subprocess.run([*adb, "kill-server"], capture_output=True, timeout=30)
    return {
        "size_mb": size_mb,
        "adb_shell_mb_s": size_mb / statistics.median(shell_times),
        "stock_adb_mb_s": size_mb / statistics.median(stock_times) if stock_times else None,
        "adb_shell_s": shell_times,
        "stock_adb_s": stock_times,
    }


def wait_for_client(adb: list[str], serial: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listing = subprocess.run([*adb, "devices"], capture_output=True, text=True, timeout=30)
        if f"{serial}\tdevice" in listing.stdout:
            return
        time.sleep(0.3)
    raise SystemExit(f"the stock adb client does not see {serial} as a device")


def tiny_models(folder: Path, count: int) -> list[Path]:
    import numpy as np
    import tensorflow as tf

    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 8)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)])
    def generator(image):
        return tf.tanh(tf.nn.conv2d(image, kernel, strides=1, padding="SAME"))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [generator.get_concrete_function()], generator)
    data = converter.convert()
    paths = []
    for index in range(count):
        path = folder / f"model_{index}.tflite"
        path.write_bytes(data)
        paths.append(path)
    return paths


def measure_overhead(serial: str, key: Path, work: Path, models: int) -> dict:
    paths = tiny_models(work, models)
    out = work / "runs.json"
    command = [sys.executable, "-m", "mobilize.cli", "bench", *map(str, paths), "--serial", serial,
               "--adb-key", str(key), "--db", str(work / "r.db"), "--json", str(out),
               "--runs", "20", "--warmup", "2", "--threads", "1", "--cooldown-timeout", "10"]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, capture_output=True, timeout=600)
    wall = time.perf_counter() - started
    runs = json.loads(out.read_text())["runs"]
    measuring = sum(run["harness"]["app_measuring_s"] for run in runs)
    in_harness = [run["harness"]["overhead_s"] for run in runs]
    return {
        "models": models,
        "command_wall_s": wall,
        "app_measuring_s": measuring,
        "overhead_per_model_s": (wall - measuring) / models,
        "harness_overhead_per_run_s": statistics.median(in_harness),
        "push_s": statistics.median(run["harness"]["push_s"] for run in runs),
    }


def markdown(push: dict, overhead: dict) -> str:
    stock = push["stock_adb_mb_s"]
    ratio = f"{push['adb_shell_mb_s'] / stock:.2f}" if stock else "n/a"
    return "\n".join([
        "",
        "## Transport and harness overhead (device_bench)",
        "",
        f"Command: `python benchmarks/transport.py --size-mb {push['size_mb']}` "
        f"({time.strftime('%Y-%m-%d')}), emulated device in its own process on loopback.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| push {push['size_mb']} MB, adb-shell TCP (median) | "
        f"{push['adb_shell_mb_s']:.1f} MB/s | |",
        f"| push {push['size_mb']} MB, stock `adb` client (median) | "
        + (f"{stock:.1f} MB/s" if stock else "not installed") + " | |",
        f"| adb-shell / stock adb | {ratio} | >= 0.5 |",
        f"| `mobilize bench` wall time per model, minus the app's measuring time "
        f"({overhead['models']} models, incl. Python start-up) | "
        f"{overhead['overhead_per_model_s']:.2f} s | < 2 s |",
        f"| harness overhead inside one run (push, start, poll, pull, checks) | "
        f"{overhead['harness_overhead_per_run_s']:.2f} s | |",
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--append", type=Path, help="append the markdown section to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="transport-bench-") as temp:
        work = Path(temp)
        key = work / "adbkey"
        with emulator_process(work / "device") as serial:
            push = measure_push(serial, key, args.size_mb, args.repeats, work)
            overhead = measure_overhead(serial, key, work, args.models)
    print(json.dumps({"push": push, "overhead": overhead}, indent=2))
    section = markdown(push, overhead)
    print(section)
    if args.append:
        with args.append.open("a") as handle:
            handle.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
