from __future__ import annotations

import subprocess
import sys

from mobilize.cli import main
from mobilize.errors import MobilizeError, UsageError


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: mobilize" in capsys.readouterr().err


def test_python_dash_m_mobilize_runs_the_same_cli():
    completed = subprocess.run(
        [sys.executable, "-m", "mobilize", "--help"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0
    assert "usage: mobilize" in completed.stdout


def test_usage_error_carries_hint_and_exit_code_2():
    error = UsageError("no such file: x.py", hint="check the path")
    assert error.exit_code == 2
    assert isinstance(error, MobilizeError)
    assert str(error) == "no such file: x.py\n  hint: check the path"


def _walk(parser, path=("mobilize",)):
    """Every parser with the words that reach it: mobilize, mobilize bench, ..."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _walk(subparser, (*path, name))


def test_every_command_has_a_description_and_every_option_a_help():
    from mobilize.cli import build_parser

    commands = {" ".join(path[1:]): parser for path, parser in _walk(build_parser())}
    for name in ("devices", "bench", "results", "results list", "results show",
                 "results compare", "sweep", "report", "demo", "export", "emulator"):
        assert name in commands, name
    missing = []
    for name, parser in commands.items():
        if name and not (parser.description or "").strip():
            missing.append(f"{name}: no description")
        for action in parser._actions:
            if not (action.help or "").strip():
                option = "/".join(action.option_strings) or action.dest
                missing.append(f"{name or 'mobilize'} {option}")
    assert not missing, missing


def test_help_shows_the_defaults(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "timed runs (default: 50)" in text
    assert "--delegate {cpu,gpu,nnapi}" in text and "(default: cpu)" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_debug_is_accepted_before_and_after_the_subcommand():
    from mobilize.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["results", "show", "1", "--debug"]).debug is True
    assert parser.parse_args(["--debug", "results", "show", "1"]).debug is True
    assert parser.parse_args(["results", "show", "1"]).debug is False
    assert parser.parse_args(["bench", "m.tflite", "--debug"]).debug is True
