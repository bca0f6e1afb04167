"""The training entry point: reproducible, writes weights with their hash, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mobilize.models.weights as weights
from mobilize.models.train import Device, ModelName, TrainConfig, train


@pytest.mark.slow
def test_training_repeats_exactly_and_records_its_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    config = TrainConfig(name=ModelName.TINY_STYLE, steps=2, device=Device.CPU, batch=2,
                         crop=32)
    first = train(config)
    first_state = torch.load(tmp_path / "tiny_style.pt", weights_only=True)
    second = train(config)
    second_state = torch.load(tmp_path / "tiny_style.pt", weights_only=True)
    assert all(torch.equal(first_state[k], second_state[k]) for k in first_state)
    assert first["sha256"] == second["sha256"] == weights.read_manifest()["tiny_style"]
    assert weights.sha256_of(tmp_path / "tiny_style.pt") == first["sha256"]
    assert (tmp_path / "tiny_style.json").exists()


def test_cli_rejects_zero_steps_and_unknown_names() -> None:
    for args in (["tiny_style", "--steps", "0"], ["no_such_model"]):
        result = subprocess.run([sys.executable, "-m", "mobilize.models.train", *args],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2
        assert "usage:" in result.stderr
