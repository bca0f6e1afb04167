"""What the user sees: stage progress with timings and the table comparing targets."""

from __future__ import annotations

import contextlib
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mobilize.exporter.config import Target
from mobilize.exporter.pipeline import STAGE_COUNT, ExportResult


class RichProgress:
    """Shows each stage while it runs (a spinner on a terminal) and how long it took."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Any = None

    def stage_started(self, number: int, name: str) -> None:
        self._stop()
        self._status = self.console.status(f"[{number}/{STAGE_COUNT}] {name} ...")
        self._status.start()

    def stage_finished(self, number: int, name: str, seconds: float, detail: str) -> None:
        if not name.startswith(" "):
            self._stop()
        label = f"[{number}/{STAGE_COUNT}]" if not name.startswith(" ") else "     "
        self.console.print(
            f"{label} {escape(name)} [dim]{seconds:6.1f} s[/] {escape(detail)}", highlight=False)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)

    def _stop(self) -> None:
        if self._status is not None:
            with contextlib.suppress(Exception):
                self._status.stop()
            self._status = None

    def close(self) -> None:
        self._stop()


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _db(value: float | None) -> str:
    return "inf" if value == float("inf") else _number(value, 1)


def comparison_table(result: ExportResult) -> Table:
    table = Table(title=f"export of {result.out_dir} (vs PyTorch, held-out photos)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  caption="worst PSNR: the worst single image, what --min-psnr gates on (export, "
                  "bench --check-quality and sweep alike); pooled: the error pooled over all "
                  "images. cap: worst PSNR of PyTorch itself on inputs rounded to the file's "
                  "integer input grid; no file reading that input can beat it",
                  caption_justify="left")
    for header, justify in (("target", "left"), ("KiB", "right"), ("I/O", "left"),
                            ("worst\nPSNR dB", "right"), ("pooled\nPSNR dB", "right"),
                            ("cap\ndB", "right"), ("SSIM", "right"), ("max err", "right"),
                            ("integer", "left"), ("transp.", "right")):
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for target in result.targets:
        if not target.ok:
            table.add_row(target.target.value, "", "", "[red]failed[/]", *[""] * 6)
            continue
        assert target.verification is not None and target.graph is not None
        verification = target.verification
        max_error = max(o.max_abs_error for o in verification.outputs)
        ssim = min((o.ssim for o in verification.outputs if o.ssim is not None),
                   default=None)
        if target.target in (Target.INT8, Target.INT16X8):
            integer = "yes" if target.graph.fully_integer else \
                f"[red]no[/] ({len(target.graph.float_ops)} float ops)"
        else:
            integer = "float"
        io = "/".join(sorted({t.dtype.replace("float", "f") for t in
                              target.graph.inputs + target.graph.outputs}))
        table.add_row(
            target.target.value,
            _number((target.size_bytes or 0) / 1024, 1), io,
            _db(verification.worst_psnr_db), _db(verification.pooled_psnr_db),
            _db(verification.input_cap_psnr_db),
            _number(ssim, 3), _number(max_error, 4), integer,
            str(target.graph.transposes_between_convs))
    return table


def print_failures(console: Console, result: ExportResult) -> None:
    """Targets that failed, and warnings about those that did not (float ops left)."""
    for target in result.targets:
        for warning in target.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    for target in result.failed:
        console.print(f"[red]{target.target.value} failed:[/] {escape(target.error or '')}",
                      highlight=False)
        if target.hint:
            console.print(f"  [yellow]what to do:[/] {escape(target.hint)}", highlight=False)
