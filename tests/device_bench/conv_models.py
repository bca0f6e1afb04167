"""A plain conv net as a .tflite whose compute grows with its middle layers: the gate's
test and benchmarks/regression_gate.py bench one against a deeper copy of itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def gate_bench_args(model: Path, serial: str, folder: Path, runs: int,
                    *extra: str) -> list[str]:
    """`mobilize bench` as the gate's test and benchmark run it: 1 thread (4 threads on 2
    shared cores swing run medians by 30 % and more), its key and results db in `folder`."""
    return ["bench", str(model), "--serial", serial, "--adb-key", str(folder / "adbkey"),
            "--db", str(folder / "results.db"), "--threads", "1", "--runs", str(runs),
            "--warmup", "5", "--cooldown-timeout", "5", "--auth-timeout", "5", *extra]


def conv_model(path: Path, middle_layers: int) -> None:
    """64x64, 16 channels: ~0.5 ms a run here; one more middle layer is ~+25 % compute."""
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def weights(cin: int, cout: int) -> tf.Tensor:
        return tf.constant(rng.normal(size=(3, 3, cin, cout)).astype(np.float32) * 0.1)

    first, last = weights(3, 16), weights(16, 3)
    middle = [weights(16, 16) for _ in range(middle_layers)]

    @tf.function(input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)])
    def generator(image: tf.Tensor) -> tf.Tensor:
        x = tf.nn.relu(tf.nn.conv2d(image, first, 1, "SAME"))
        for kernel in middle:
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        return tf.tanh(tf.nn.conv2d(x, last, 1, "SAME"))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [generator.get_concrete_function()], generator)
    path.write_bytes(converter.convert())
