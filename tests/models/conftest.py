"""Fixtures for the model zoo tests."""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from mobilize.models.train import ModelName

NAMES = [name.value for name in ModelName]
TEST_SIZE = 64


def model_module(name: str) -> ModuleType:
    return importlib.import_module(f"mobilize.models.{name}")


def inputs_at(module: ModuleType, size: int) -> tuple[torch.Tensor, ...]:
    """Random inputs in each input's value range, at `size` (ESPCN: its low-res side)."""
    side = size // 3 if module.TASK == "super_resolution_x3" else size
    generator = torch.Generator().manual_seed(0)
    tensors = []
    for spec in module.INPUTS:
        low, high = spec.value_range.low, spec.value_range.high
        tensors.append(torch.rand(1, spec.shape[1], side, side, generator=generator)
                       * (high - low) + low)
    return tuple(tensors)
