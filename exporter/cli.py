"""The `mobilize` command line: one entry point, subcommands contributed by each package.

Each package keeps its own subcommands in its own cli module and exposes
`register(subparsers)`; this module only wires them together and turns errors into
messages and exit codes.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.markup import escape

from exporter.errors import MobilizeError

# Modules that contribute subcommands. A module that is missing (a package not yet
# written) is skipped so that the others still work.
SUBCOMMAND_MODULES = (
    "exporter.export_cli",
    "device_bench.cli",
    "device_bench.emulator.cli",
    "device_bench.sweep_cli",
    "exporter.demo",
)

EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE: a bug in mobilize, not in the user's input
EXIT_INTERRUPTED = 130

err_console = Console(stderr=True, highlight=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobilize",
        description="Convert PyTorch image generators to TFLite and benchmark them on Android.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        register = _load_register(module_name)
        if register is not None:
            register(subparsers)
    return parser


def _load_register(module_name: str) -> Callable[[argparse._SubParsersAction], None] | None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return None
        raise
    return module.register


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args) or 0)
    except MobilizeError as error:
        if args.debug:
            traceback.print_exc()
        _print_error("[bold red]error:[/]", error.message)
        if error.hint:
            _print_error("[yellow]what to do:[/]", error.hint)
        return error.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the last line of defence for users
        if args.debug:
            traceback.print_exc()
        else:
            err_console.print(
                f"[bold red]internal error:[/] {type(error).__name__}: {escape(str(error))}\n"
                "This is a bug in mobilize. Run again with --debug for the traceback "
                "and include it in a bug report.",
                markup=True,
                soft_wrap=True,
            )
        return EXIT_INTERNAL_ERROR


def _print_error(label: str, text: str) -> None:
    # Messages may hold paths or shapes in [brackets]: escape them so rich prints them as is.
    err_console.print(f"{label} {escape(text)}", markup=True, soft_wrap=True)


if __name__ == "__main__":
    raise SystemExit(main())
