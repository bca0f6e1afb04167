"""pytest fixture `emulated_device`: a fresh emulated device per test on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilize.emulator.testing import EmulatorHandle, running_emulator


@pytest.fixture
def emulated_device(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulated-device", accept_new_keys=True) as handle:
        yield handle
