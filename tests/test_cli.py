from __future__ import annotations

import subprocess
import sys

from exporter.cli import main
from exporter.errors import MobilizeError, UsageError


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: mobilize" in capsys.readouterr().err


def test_python_dash_m_exporter_runs_the_same_cli():
    completed = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0
    assert "usage: mobilize" in completed.stdout


def test_usage_error_carries_hint_and_exit_code_2():
    error = UsageError("no such file: x.py", hint="check the path")
    assert error.exit_code == 2
    assert isinstance(error, MobilizeError)
    assert str(error) == "no such file: x.py\n  hint: check the path"
