"""Where the commands print: tables to stdout, progress and messages to stderr.

`--json -` (or a path that is this process's stdout, such as /dev/stdout) makes stdout
carry the JSON alone, so `mobilize results show 12 --json - | jq` works: the tables then go
to stderr with the progress.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from mobilize.contract.files import atomic_write_bytes
from mobilize.errors import UsageError

# A wide table (--wide) in a pipe or a log file would be folded to rich's 80 columns; give
# it room. The compact tables are narrower than 80 and unaffected. COLUMNS still wins.
PIPE_WIDTH = 220
STDOUT = "-"
err_console = Console(stderr=True, highlight=False)
_print_lock = threading.Lock()


class _TableConsole:
    """A rich console on whatever sys.stdout (or sys.stderr) is now, wide when it is not a
    terminal. Lines are not cropped to the terminal: a `--wide` table too wide for it is
    printed whole (for a pager or a log), not cut at the right edge."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr

    def print(self, *objects: Any, **options: Any) -> None:
        options.setdefault("crop", False)
        self._console().print(*objects, **options)

    def print_json(self, **options: Any) -> None:
        self._console().print_json(**options)

    def _console(self) -> Console:
        stream = sys.stderr if self.stderr else sys.stdout
        width = None if stream.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH
        return Console(highlight=False, width=width, stderr=self.stderr)


console = _TableConsole()
_tables_to_stderr = _TableConsole(stderr=True)


def announce(message: str) -> None:
    with _print_lock:
        err_console.print(escape(message), soft_wrap=True)


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--json",
        metavar="PATH|-",
        help=f"also write {what} as JSON to PATH; - writes it to stdout, which then carries "
        "only the JSON (tables go to stderr)",
    )


def add_wide_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wide",
        action="store_true",
        help="every column (min/mean/p99/std, first inference, PSS, thermal, run id) instead "
        "of the compact table that fits 80 columns",
    )


def json_goes_to_stdout(target: str | None) -> bool:
    """`-`, or a path naming the file or pipe this process's stdout already writes to."""
    if target is None:
        return False
    if target == STDOUT:
        return True
    try:
        return os.path.samestat(os.stat(target), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):
        return False  # a new path, or a stdout without a file descriptor (a test's capture)


def figures_console(json_target: str | None) -> _TableConsole:
    """The console for tables and figures: stdout, unless the JSON owns stdout."""
    return _tables_to_stderr if json_goes_to_stdout(json_target) else console


def write_json(target: str, payload: Any) -> None:
    """`--json PATH|-`: JSON to stdout for `-`, else to the file (atomically where it is a
    regular file or a new path; a FIFO, a device or a symlink is written through)."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    if target == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(target)
    if path.is_dir():
        raise UsageError(
            f"--json {target} is a folder", hint="give a file name, or - for standard output"
        )
    sys.stdout.flush()  # whatever was printed before lands before the JSON (/dev/stdout)
    atomic_write_bytes(path, text.encode())
