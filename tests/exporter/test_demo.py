"""`mobilize demo`: a bundled generator exported to fp32, fp16 and int8."""

from __future__ import annotations

import json

import pytest

from exporter.cli import main
from exporter.config import Target
from exporter.demo import DEMO_MODELS, DEMO_TARGETS, pick_demo_model, run_demo_export

pytestmark = pytest.mark.slow


def test_demo_export_returns_the_paths(tmp_path):
    result = run_demo_export(tmp_path)
    assert set(result.paths) == set(DEMO_TARGETS)
    for target, path in result.paths.items():
        assert path.is_file() and path.suffix == ".tflite", target
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata["source_model"]["ref"] == pick_demo_model()
    int8 = next(a for a in metadata["artifacts"] if a["target"] == Target.INT8.value)
    assert int8["graph"]["fully_integer"]
    assert pick_demo_model() in DEMO_MODELS


def test_demo_command_prints_the_comparison_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for target in DEMO_TARGETS:
        assert target.value in out
    assert "PSNR dB" in out and (tmp_path / "demo" / "metadata.json").is_file()
