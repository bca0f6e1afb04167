"""Fixtures of the device_bench tests: schema-valid results and tiny .tflite models."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mobilize.results.stats import summarize

_BASE_RESULT: dict[str, Any] = {
    "schema_version": 1,
    "run_id": "run-0",
    "status": "ok",
    "message": None,
    "runner": "emulator",
    "config": {"delegate": "cpu", "threads": 2, "warmup_runs": 1, "num_runs": 5,
               "gpu_precision": "fp16"},
    "model": {"path": "/data/local/tmp/mobilize/m.tflite", "size_bytes": 1000, "sha256": None},
    "latency": None,
    "memory": {"unit": "kB", "peak_rss": 51200.0, "rss": 40000.0, "pss": None,
               "native_heap": 1000.0},
    "delegate": {"requested": "cpu", "applied": True, "name": "xnnpack", "nodes_delegated": 3,
                 "nodes_total": 3, "partitions": 1, "fallback_ops": []},
    "thermal": {"before": "none", "after": "none"},
    "device": {"model": "Pixel 7", "abi": "arm64-v8a", "sdk": 34},
    "runtime": {"name": "litert", "version": "2.3.0", "app_version": "0.1.0"},
    "started_at": "2026-11-23T07:00:00+00:00",
    "finished_at": "2026-11-23T07:00:01+00:00",
}


def make_result(run_id: str, samples: list[float], **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(_BASE_RESULT)
    result["run_id"] = run_id
    result["latency"] = {"unit": "us", "init": 1500.0, "first_inference": 900.0,
                         "warmup": [800.0], "samples": samples, "stats": summarize(samples)}
    result.update(changes)
    return result


def make_record(run_id: str, samples: list[float], serial: str = "127.0.0.1:5555",
                **changes: Any) -> dict[str, Any]:
    return {
        "serial": serial, "created_at": "2026-11-23T07:00:02+00:00", "model_name": "m.tflite",
        "model_path": "/tmp/m.tflite", "model_sha256": "ab" * 32, "target": None,
        "result": make_result(run_id, samples, **changes),
        "harness": {"wall_s": 1.0, "warnings": []},
    }


@pytest.fixture
def record_factory() -> Callable[..., dict[str, Any]]:
    return make_record


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 conv+tanh model made with the real TFLite converter."""
    import tensorflow as tf

    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)])
    def generator(image: tf.Tensor) -> tf.Tensor:
        return tf.tanh(tf.nn.conv2d(image, kernel, strides=1, padding="SAME"))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [generator.get_concrete_function()], generator)
    path = tmp_path_factory.mktemp("models") / "tiny.tflite"
    path.write_bytes(converter.convert())
    return path
