"""Nothing is downloaded during an export: every network connection attempt fails here and
is recorded, and the export still succeeds without one."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

from mobilize.exporter.calibration import ONNX2TF_SAMPLE_FILE, onnx2tf_sample_images
from mobilize.exporter.config import Target
from mobilize.exporter.pipeline import run_export
from tests.exporter.conftest import family_config


class NetworkAttempt(OSError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    attempts: list[str] = []

    def refuse(kind: str):
        def blocked(*args, **kwargs):
            attempts.append(f"{kind} {args[1:] if kind == 'connect' else args[:2]}")
            raise NetworkAttempt("network use during an export")
        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("resolve"))
    return attempts


def test_the_guard_catches_onnx2tfs_download(no_network, tmp_path, monkeypatch):
    # Without the sample file in the working directory onnx2tf goes to the internet.
    from onnx2tf.utils.common_functions import download_test_image_data

    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - requests wraps our error in its own
        download_test_image_data()
    assert no_network


def test_sample_file_is_made_from_real_photos():
    samples = onnx2tf_sample_images()
    assert samples.shape == (20, 128, 128, 3) and samples.dtype == np.float32
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    assert samples.std() > 0.1  # photographs, not a constant
    assert ONNX2TF_SAMPLE_FILE == "calibration_image_sample_data_20x128x128x3_float32.npy"


@pytest.mark.slow
def test_export_of_an_image_model_succeeds_offline(no_network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the user's folder: nothing may appear here
    result = run_export(family_config("espcn", tmp_path / "out",
                                      targets=(Target.FP32, Target.INT8)))
    assert no_network == []
    assert {t.target for t in result.targets if t.ok} == {Target.FP32, Target.INT8}
    assert sorted(os.listdir(tmp_path)) == ["out"]
