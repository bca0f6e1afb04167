"""The `mobilize` command line: the one front door.

Each room keeps its own subcommands in its own cli module and exposes
`register(subparsers)`; this module only wires them together and turns errors into
messages and the exit codes of `mobilize.errors.ExitCode`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.markup import escape

from mobilize import __version__, demo
from mobilize.bench import cli as bench_cli
from mobilize.bench import sweep_cli
from mobilize.emulator import cli as emulator_cli
from mobilize.errors import EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, MobilizeError
from mobilize.exporter import export_cli
from mobilize.results import cli as results_cli

# Each room contributes its subcommands through `register(subparsers)`. The imports are
# explicit: a room that fails to import is a bug to see, not a command to hide. They are
# kept light (no torch, no TensorFlow) so `mobilize bench` starts fast.
REGISTRARS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    export_cli.register,
    bench_cli.register,
    results_cli.register,
    emulator_cli.register,
    sweep_cli.register,
    demo.register,
)

err_console = Console(stderr=True, highlight=False)


DEBUG_HELP = "show the full traceback when something fails"


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help, as ArgumentDefaultsHelpFormatter does,
    but not where it says nothing (None, False, []) or where the text names it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, [], argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        shown = ",".join(default) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobilize",
        description="Convert PyTorch image generators to TFLite and benchmark them on Android.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument("--version", action="version", version=f"mobilize {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="what to do; `mobilize COMMAND --help` for more"
    )
    for register in REGISTRARS:
        register(subparsers)
    for subparser in _subparsers_of(parser):
        _finish(subparser)
    return parser


def _subparsers_of(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones too (`results list`), with its help line
    given as its description where it has none."""
    found = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, subparser in action.choices.items():
            if not subparser.description and helps.get(name):
                text = helps[name].replace("%%", "%")
                subparser.description = text[:1].upper() + text[1:] + "."
            found += [subparser, *_subparsers_of(subparser)]
    return found


def _finish(subparser: argparse.ArgumentParser) -> None:
    subparser.formatter_class = DefaultsHelpFormatter
    # `mobilize results show 1 --debug` as well as `mobilize --debug results show 1`: the
    # hints say "run again with --debug" and people add it at the end. SUPPRESS keeps an
    # absent flag from overwriting the one given before the subcommand.
    if "--debug" not in subparser._option_string_actions:
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                               help=DEBUG_HELP)


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
