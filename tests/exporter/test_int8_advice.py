"""An int8 file under 30 dB SNR: the advice quotes the other targets measured on THIS model
in the same run (issue 15), never figures from other models."""

from __future__ import annotations

import json

import pytest

from mobilize.exporter.config import Target
from mobilize.exporter.int8_advice import Option, advice, cpu_latency_ms
from mobilize.exporter.pipeline import run_export
from tests.exporter.conftest import family_config


@pytest.fixture(scope="module")
def johnson_int8(tmp_path_factory):
    out = tmp_path_factory.mktemp("advice") / "johnson"
    result = run_export(family_config("johnson", out, targets=(Target.INT8,)))
    return result, json.loads(result.metadata_path.read_text())["artifacts"][0]


def test_int8_alone_measures_the_other_targets_on_this_model(johnson_int8):
    result, int8 = johnson_int8
    measured = {o["target"]: o for o in int8["alternatives_measured"]}
    assert list(measured) == ["tflite-int8", "tflite-dynamic", "tflite-fp16", "tflite-int16x8"]
    own_snr = min(o["snr_db"] for o in int8["verification"]["outputs"])
    assert measured["tflite-int8"]["snr_db"] == pytest.approx(own_snr, abs=0.01)
    assert own_snr < 30
    # random-init InstanceNorm at 64x64: float keeps the picture, int16x8 beats int8
    assert measured["tflite-fp16"]["snr_db"] > 50
    assert measured["tflite-int16x8"]["snr_db"] > own_snr
    assert all(o["cpu_ms"] > 0 and o["size_bytes"] > 1000 for o in measured.values())
    [told] = [w for w in int8["warnings"] if "Measured on this model in this run" in w]
    lines = {line.split()[0]: line for line in told.splitlines()[1:] if line.startswith("    ")}
    for option in measured.values():  # every figure quoted is one measured here
        assert float(lines[option["target"]].split()[1]) == pytest.approx(option["snr_db"],
                                                                          abs=0.051)
    assert "34-49" not in told
    # measured, not exported: only the asked target's file is written
    assert sorted(p.name for p in result.out_dir.glob("*.tflite")) == ["model_int8.tflite"]


def test_no_alternatives_keeps_the_warning_to_int8(tmp_path):
    config = family_config("johnson", tmp_path / "out", targets=(Target.INT8,),
                           int8_alternatives=False, calib_samples=8, verify_samples=2)
    int8 = json.loads(run_export(config).metadata_path.read_text())["artifacts"][0]
    [told] = [w for w in int8["warnings"] if "under 30 dB" in w]
    assert "tflite-int8" in told and "tflite-fp16" not in told
    assert [o["target"] for o in int8["alternatives_measured"]] == ["tflite-int8"]


def test_advice_picks_the_fastest_target_that_keeps_30_db():
    options = (Option(Target.INT8, 21.0, 33.0, 3.0, 30_000),
               Option(Target.DYNAMIC, 31.0, 44.0, 9.0, 30_000),
               Option(Target.FP16, 60.0, 70.0, 5.0, 60_000),
               Option(Target.INT16X8, error="'tfl.prelu' op has no 16x8 kernel\nmore"))
    text = advice(options, means=4, rsqrts=2)
    assert "--target tflite-fp16" in text and "own statistics (4 MEAN, 2 RSQRT" in text
    assert "tflite-int16x8  failed: 'tfl.prelu' op has no 16x8 kernel" in text
    low = advice(options[:2] + (Option(Target.FP16, 29.0, 40.0, 1.0, 1),), 0, 0)
    assert "--target tflite-dynamic" in low and "own statistics" not in low
    none = advice((options[0], Option(Target.DYNAMIC, 25.0, 30.0, 1.0, 1)), 0, 0)
    assert "None of them reaches 30 dB on this model" in none


def test_advice_after_finetune_does_not_compare_other_weights():
    text = advice((Option(Target.INT8, 24.0, 38.0, 3.0, 1),), 4, 2, finetune_steps=200)
    assert "after --finetune 200" in text and "without --finetune" in text


def test_cpu_latency_is_measured_on_the_file(johnson_int8):
    result, _ = johnson_int8
    content = (result.out_dir / "model_int8.tflite").read_bytes()
    assert 0 < cpu_latency_ms(content, runs=3) < 5_000
