"""A tiny export (fp32, fp16, int8 of a three-conv generator at 32x32), made once per session
with the real exporter, and an emulated device per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilize.emulator.testing import EmulatorHandle, running_emulator
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.pipeline import run_export

TINY_MODEL = Path(__file__).with_name("tiny_model.py")


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny_export")
    result = run_export(
        ExportConfig(
            model_ref=f"{TINY_MODEL}:build",
            out_dir=out,
            targets=(Target.FP32, Target.FP16, Target.INT8),
            calib_samples=8,
            verify_samples=2,
        )
    )
    assert result.metadata_path.is_file()
    return out


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "device", accept_new_keys=True) as handle:
        yield handle


def device_args(emu: EmulatorHandle, tmp_path: Path) -> list[str]:
    return ["--serial", emu.serial, "--adb-key", str(tmp_path / "keys" / "adbkey"),
            "--auth-timeout", "5", "--db", str(tmp_path / "results.db")]
