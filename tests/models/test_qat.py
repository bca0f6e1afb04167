"""Quantization-aware fine-tuning: where it rounds, that it strips clean, that it trains."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from mobilize.models import qat
from mobilize.models.train import ModelName
from mobilize.models.weights import load_pretrained, read_manifest, record_path
from tests.models.conftest import TEST_SIZE, inputs_at, model_module


def _calibrated(name: str) -> tuple[nn.Module, qat.FakeQuantized, tuple[torch.Tensor, ...]]:
    module = model_module(name)
    model = module.build(pretrained=True)
    inputs = inputs_at(module, TEST_SIZE)
    quantized = qat.insert_fake_quant(model, module)
    quantized.set_rounding(False)
    with torch.no_grad():
        model(*inputs)
    quantized.set_rounding(True)
    quantized.set_observing(False)
    return model, quantized, inputs


def _convs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("name", ["tiny_style", "unet"])
def test_fake_quant_changes_outputs_a_little_and_rounds_weights_to_int8(name: str) -> None:
    module = model_module(name)
    reference = module.build(pretrained=True)
    model, _, inputs = _calibrated(name)
    with torch.no_grad():
        expected, output = reference(*inputs), model(*inputs)
    difference = (output - expected).abs()
    assert 0 < difference.mean() < 0.03 and difference.max() < 0.3, difference.max()
    for conv in _convs(model):
        weight = conv.weight.detach()  # through the parametrization: the int8 grid
        axis = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
        channels = weight.movedim(axis, 0).flatten(1)
        steps = channels / (channels.abs().amax(dim=1, keepdim=True) / 127)
        assert torch.allclose(steps, steps.round(), atol=1e-3)
        assert steps.abs().max() <= 127 + 1e-3


def test_fixed_ranges_are_tflites_int8_input_and_tanh() -> None:
    inputs = qat.fixed_fake_quant(0.0, 1.0)
    assert inputs.scale.item() == pytest.approx(1 / 255) and inputs.zero_point.item() == -128
    tanh = qat.fixed_fake_quant(-1.0, 1.0)
    assert tanh.scale.item() == pytest.approx(1 / 128) and tanh.zero_point.item() == 0
    assert torch.equal(inputs(torch.tensor([0.0, 1.0, 2.0])), torch.tensor([0.0, 1.0, 1.0]))


def test_stripping_leaves_a_plain_module_that_loads_into_the_factory() -> None:
    model, quantized, inputs = _calibrated("tiny_style")
    with torch.no_grad():
        fake_quantized_output = model(*inputs)
    plain = quantized.strip()
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in plain.modules())
    fresh = model_module("tiny_style").build(pretrained=False)
    assert set(plain.state_dict()) == set(fresh.state_dict())
    fresh.load_state_dict(plain.state_dict())
    with torch.no_grad():
        # the weights keep the int8 grid; only activation rounding is gone
        difference = (fresh(*inputs) - fake_quantized_output).abs().mean()
    assert 0 < difference < 0.03


def test_a_few_qat_steps_train_and_return_a_plain_model() -> None:
    model = model_module("tiny_style").build(pretrained=True)
    config = qat.QatConfig(name=ModelName.TINY_STYLE, steps=3, batch=2, crop=32)
    run = qat.fine_tune(config, model, log=lambda _line: None)
    assert len(run.losses) == 3 and all(0 < loss < 1 for loss in run.losses)
    assert not any(parametrize.is_parametrized(m) for m in run.model.modules())
    assert set(run.model.state_dict()) == set(model_module("tiny_style").build(
        pretrained=False).state_dict())


QAT_WEIGHTS = sorted(name for name in read_manifest() if name.endswith(qat.SUFFIX))


@pytest.mark.parametrize("name", QAT_WEIGHTS)
def test_committed_qat_weights_have_a_record_and_load_into_their_base(name: str) -> None:
    # the sha256 itself is checked for every manifest entry by test_weights.py
    record = json.loads(record_path(name).read_text())
    assert record["sha256"] == read_manifest()[name]
    assert qat.qat_name(record["base"]) == name
    model = load_pretrained(name, model_module(record["base"]).build(pretrained=False))
    assert all(torch.isfinite(p).all() for p in model.parameters())
