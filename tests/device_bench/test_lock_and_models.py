"""The per-device lock and what `bench MODEL` accepts."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from mobilize.bench.model_input import resolve_model
from mobilize.device.errors import ModelError
from mobilize.device.lock import DeviceBusyError, device_lock


def test_second_holder_waits_then_gives_up(tmp_path: Path) -> None:
    with device_lock("127.0.0.1:5555", 1.0, tmp_path):
        started = time.monotonic()
        with pytest.raises(DeviceBusyError) as caught:
            with device_lock("127.0.0.1:5555", 0.5, tmp_path):
                pass
        assert time.monotonic() - started >= 0.5
    assert "another benchmark" in caught.value.message
    with device_lock("127.0.0.1:5555", 0.1, tmp_path):  # free again once released
        pass


def test_second_holder_gets_the_device_when_the_first_finishes(tmp_path: Path) -> None:
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with device_lock("dev", 5.0, tmp_path):
            first_in.set()
            order.append("first-start")
            time.sleep(0.4)
            order.append("first-end")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with device_lock("dev", 5.0, tmp_path):
        order.append("second")
    thread.join()
    assert order == ["first-start", "first-end", "second"]


def test_different_devices_do_not_block_each_other(tmp_path: Path) -> None:
    with device_lock("a", 0.1, tmp_path), device_lock("b", 0.1, tmp_path):
        pass


def test_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        resolve_model(tmp_path / "nope.tflite")
    assert "model not found" in caught.value.message
    assert caught.value.exit_code == 2


def test_non_tflite_file_is_refused(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a .tflite"):
        resolve_model(onnx)


def test_export_folder_is_read_through_its_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "fast_style"
    folder.mkdir()
    # Names deliberately unlike their targets: the harness must not parse file names.
    (folder / "a.tflite").write_bytes(b"one")
    (folder / "b.tflite").write_bytes(b"two")
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "metadata.json").write_text(json.dumps({
        "onnx": {"file": "model.onnx"},
        "artifacts": [
            {"target": "tflite-int8", "file": "a.tflite", "sha256": sha256(b"one")},
            {"target": "tflite-fp16", "file": "b.tflite", "sha256": sha256(b"two")},
        ]}))
    every = resolve_model(folder)
    assert [(m.path.name, m.target, m.name) for m in every] == [
        ("a.tflite", "tflite-int8", "fast_style:tflite-int8"),
        ("b.tflite", "tflite-fp16", "fast_style:tflite-fp16")]
    only = resolve_model(folder, ["tflite-fp16"])
    assert [m.path.name for m in only] == ["b.tflite"]
    with pytest.raises(ModelError, match="no artifact for target tflite-fp32"):
        resolve_model(folder, ["tflite-fp32"])


def test_export_folder_file_changed_since_export(tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "m.tflite").write_bytes(b"edited")
    (folder / "metadata.json").write_text(json.dumps({"artifacts": [
        {"target": "tflite-fp32", "file": "m.tflite", "sha256": sha256(b"original")}]}))
    with pytest.raises(ModelError, match="changed since it was exported"):
        resolve_model(folder)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_export_folder_without_metadata(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="metadata.json"):
        resolve_model(tmp_path)
