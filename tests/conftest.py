"""Suite-wide settings. Each part keeps its fixtures in its own folder's conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["mobilize.emulator.pytest_plugin"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
