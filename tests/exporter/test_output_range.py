"""A declared output range the model's output cannot match is a warning, with the range
measured on the calibration samples, before the int8 figures (issue 14)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mobilize.contract.specs import ValueRange
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.output_range import MeasuredRange, measure, range_warnings
from mobilize.exporter.pipeline import run_export


def _measured(low: float, high: float) -> tuple[MeasuredRange, ...]:
    return (MeasuredRange("output", low, high, 8),)


def test_output_on_another_scale_is_named_with_its_measured_range():
    (warning,) = range_warnings(_measured(0.0, 255.0), ValueRange(-1.0, 1.0))
    assert "spans 0..255" in warning and "-1..1" in warning
    assert "8 calibration samples" in warning and "--output-range" in warning


def test_output_using_under_5_percent_of_the_span_is_named():
    (warning,) = range_warnings(_measured(0.48, 0.52), ValueRange(0.0, 1.0))
    assert "spans 0.48..0.52" in warning and "uses 4.0% of it" in warning
    assert range_warnings(_measured(0.40, 0.60), ValueRange(0.0, 1.0)) == ()  # 20%: fine


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (-0.98, 0.97), (-1.1, 1.2), (0, 0.9)])
def test_outputs_that_live_in_the_declared_range_pass(low, high):
    # tanh's -1..1, an SR net overshooting its 0..1 a little, half the span used
    assert range_warnings(_measured(low, high), ValueRange(-1.0, 1.0)) == ()


def test_nothing_declared_or_mean_std_is_not_judged():
    assert range_warnings(_measured(0.0, 255.0), None) == ()
    normalized = ValueRange(0.0, 1.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert range_warnings(_measured(0.0, 255.0), normalized) == ()


def test_measure_reads_min_and_max_of_every_output():
    (measured,) = measure({"output": np.array([[-2.0, 3.0], [0.5, 1.0]], np.float32)})
    assert (measured.low, measured.high, measured.samples) == (-2.0, 3.0, 2)


class Times255(nn.Module):
    """A 0..1 image net that writes 0..255 (a user's trained net declared -1..1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)) * 255.0


class Events:
    def __init__(self) -> None:
        self.events: list[str] = []

    def stage_started(self, number: int, name: str) -> None:
        self.events.append(f"start {name}")

    def stage_finished(self, number: int, name: str, seconds: float, detail: str) -> None:
        self.events.append(f"done {name}")

    def warn(self, message: str) -> None:
        self.events.append(f"warn {message}")


@pytest.mark.slow
def test_export_warns_before_the_int8_figures_and_keeps_it_in_metadata(tmp_path: Path):
    events = Events()
    config = ExportConfig(model_ref="times255", module=Times255().eval(),
                          out_dir=tmp_path / "out", input_shapes=((1, 3, 16, 16),),
                          input_names=("image",), input_ranges=(ValueRange(0.0, 1.0),),
                          output_range=ValueRange(-1.0, 1.0), targets=(Target.INT8,),
                          calib_samples=8, verify_samples=2)
    result = run_export(config, events)
    warned = [i for i, e in enumerate(events.events) if e.startswith("warn") and "spans" in e]
    assert len(warned) == 1
    assert warned[0] < events.events.index("done   tflite-int8")
    assert warned[0] < events.events.index("start convert + verify")
    text = events.events[warned[0]]
    assert re.search(r"spans 0\.\.2[45]\d on the 8 calibration samples", text), text
    assert "declared output range is -1..1" in text
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata["warnings"] == [text.removeprefix("warn ")]
    assert text.removeprefix("warn ") in result.warnings
