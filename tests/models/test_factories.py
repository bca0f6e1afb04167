"""Every factory builds, declares its inputs, and runs at 64x64 with the right shape/range."""

from __future__ import annotations

import pytest
import torch

from mobilize.contract.specs import InputSpec, ValueRange
from tests.models.conftest import NAMES, TEST_SIZE, inputs_at, model_module


@pytest.mark.parametrize("name", NAMES)
def test_module_declares_inputs_and_output_range(name: str) -> None:
    module = model_module(name)
    assert module.INPUTS and all(isinstance(spec, InputSpec) for spec in module.INPUTS)
    assert isinstance(module.OUTPUT_RANGE, ValueRange)
    for spec in module.INPUTS:
        assert spec.is_image and spec.shape[0] == 1
    expected_side = 86 if name == "espcn" else 256
    assert module.INPUTS[0].shape[2:] == (expected_side, expected_side)


@pytest.mark.parametrize("pretrained", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_factory_runs_at_64(name: str, pretrained: bool) -> None:
    module = model_module(name)
    model = module.build(pretrained=pretrained)
    assert not model.training
    with torch.no_grad():
        output = model(*inputs_at(module, TEST_SIZE))
    side = 3 * (TEST_SIZE // 3) if name == "espcn" else TEST_SIZE  # ESPCN: x3 of 21
    assert output.shape == (1, 3, side, side)
    assert torch.isfinite(output).all()
    low, high = module.OUTPUT_RANGE.low, module.OUTPUT_RANGE.high
    assert output.min() >= low and output.max() <= high
    assert output.std() > 1e-3  # not a constant picture


def test_tiny_style_is_in_the_8k_class() -> None:
    parameters = sum(p.numel() for p in model_module("tiny_style").build(False).parameters())
    assert 7_000 <= parameters <= 9_000


def test_student_has_no_instance_norm_and_is_smaller_than_teacher() -> None:
    student = model_module("style_student").build(pretrained=False)
    teacher = model_module("fast_style").build(pretrained=False)
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in student.modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in teacher.modules())
    depthwise = [m for m in student.modules()
                 if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1]
    assert len(depthwise) >= 8
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(student) * 10 < count(teacher)


def test_adain_transfers_style_statistics_into_the_output() -> None:
    """Changing only the style image changes the output; the content keeps its layout."""
    model = model_module("adain").build(pretrained=True)
    content, style = inputs_at(model_module("adain"), TEST_SIZE)
    with torch.no_grad():
        first = model(content, style)
        second = model(content, torch.full_like(style, 0.2))
    assert (first - second).abs().mean() > 0.05
