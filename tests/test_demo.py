"""`mobilize demo`: a bundled generator exported to fp32, fp16 and int8."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mobilize.cli import main
from mobilize.demo import (
    DEMO_MODEL,
    DEMO_RUNS,
    DEMO_TARGETS,
    run_demo_export,
)
from mobilize.exporter.config import Target

pytestmark = pytest.mark.slow


def test_demo_export_returns_the_paths(tmp_path):
    result = run_demo_export(tmp_path)
    assert set(result.paths) == set(DEMO_TARGETS)
    for target, path in result.paths.items():
        assert path.is_file() and path.suffix == ".tflite", target
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata["source_model"]["ref"] == DEMO_MODEL
    int8 = next(a for a in metadata["artifacts"] if a["target"] == Target.INT8.value)
    assert int8["graph"]["fully_integer"]


def test_demo_command_prints_the_comparison_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-bench"]) == 0
    out = capsys.readouterr().out
    for target in DEMO_TARGETS:
        assert target.value in out
    assert "PSNR dB" in out and (tmp_path / "demo" / "metadata.json").is_file()
    assert not (tmp_path / "demo" / "results.db").exists()


@pytest.mark.emulator
def test_demo_benchmarks_every_export_on_an_emulated_device(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "started an emulated device" in printed and "Benchmark results" in printed
    runs = json.loads((out_dir / "bench.json").read_text())["runs"]
    benched = sorted(Path(run["model_path"]).name for run in runs)
    exported = sorted(path.name for path in exported_files(out_dir))
    assert len(runs) == len(DEMO_TARGETS) and benched == exported
    for run in runs:
        assert run["result"]["status"] == "ok"
        assert len(run["result"]["latency"]["samples"]) == DEMO_RUNS
        # The emulated device has no GPU and was asked for none: the CPU ran, and says so.
        assert run["result"]["delegate"]["requested"] == "cpu"
    with sqlite3.connect(out_dir / "results.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(DEMO_TARGETS)


def exported_files(out_dir: Path) -> list[Path]:
    metadata = json.loads((out_dir / "metadata.json").read_text())
    return [out_dir / artifact["file"] for artifact in metadata["artifacts"]]
