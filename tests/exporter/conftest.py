"""Shared conversions: each family is exported once per session and the tests read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilize.exporter.config import ALL_TARGETS, ExportConfig
from mobilize.exporter.pipeline import ExportResult, run_export
from tests.exporter.families import FAMILIES

FAMILIES_FILE = Path(__file__).with_name("families.py")
TEST_SIZE = 64


def family_config(name: str, out_dir: Path, **overrides: object) -> ExportConfig:
    family = FAMILIES[name]
    settings: dict[str, object] = dict(
        model_ref=f"{FAMILIES_FILE}:build_{name}",
        out_dir=out_dir,
        targets=ALL_TARGETS,
        input_shapes=tuple(spec.shape for spec in family.inputs(TEST_SIZE)),
        input_ranges=(family.value_range,),
        input_names=family.input_names,
        output_range=family.value_range,
        calib_samples=16,
        verify_samples=3,
    )
    settings.update(overrides)
    return ExportConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def family_export(tmp_path_factory: pytest.TempPathFactory):
    """family name -> ExportResult of every target at 64x64, converted once per session."""
    cache: dict[str, ExportResult] = {}

    def get(name: str) -> ExportResult:
        if name not in cache:
            out = tmp_path_factory.mktemp(f"export_{name}")
            cache[name] = run_export(family_config(name, out))
        return cache[name]

    return get
