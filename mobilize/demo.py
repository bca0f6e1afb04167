"""`mobilize demo`: the main job end to end, with no phone needed.

Exports a bundled generator to fp32, fp16 and int8, then benchmarks each file on a device:
the phone chosen with --serial, or else an emulated device started for the demo. The
benchmark goes through the same `mobilize bench` command line a user types, so the demo
shows (and tests) exactly that path.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mobilize.exporter.config import Target

if TYPE_CHECKING:
    from mobilize.exporter.pipeline import ExportResult, ProgressListener

DEMO_SIZE = 128
DEMO_MODEL = "mobilize.models.style_student:build"
DEMO_TARGETS = (Target.FP32, Target.FP16, Target.INT8)


def _demo_shape() -> tuple[tuple[int, ...], ...]:
    """A modest size: the model's own INPUTS scaled to DEMO_SIZE."""
    from mobilize.models import style_student

    shapes = []
    for spec in style_student.INPUTS:
        n, c, h, w = spec.shape
        scale = min(1.0, DEMO_SIZE / max(h, w))
        shapes.append((n, c, max(8, int(h * scale) // 4 * 4), max(8, int(w * scale) // 4 * 4)))
    return tuple(shapes)


def run_demo_export(out_dir: Path, progress: ProgressListener | None = None) -> ExportResult:
    """Export the demo generator to fp32, fp16 and int8 in out_dir; result.paths has the files."""
    from mobilize.exporter.config import ExportConfig
    from mobilize.exporter.pipeline import run_export

    config = ExportConfig(model_ref=DEMO_MODEL, out_dir=out_dir,
                          targets=DEMO_TARGETS,
                          input_shapes=_demo_shape(), calib_samples=16)
    return run_export(config, progress)


DEMO_RUNS = 30
DEMO_WARMUP = 5
DEMO_THREADS = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="export a bundled generator to fp32, fp16 and int8 and benchmark each on a device "
        "(an emulated one unless --serial names a phone)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument(
        "--serial", help="benchmark on this phone instead of an emulated device (HOST:PORT for TCP)"
    )
    parser.add_argument(
        "--no-bench", action="store_true", help="stop after the export and its comparison table"
    )
    parser.set_defaults(handler=run)


@contextlib.contextmanager
def _demo_device(out_dir: Path, serial: str | None, console: Console) -> Iterator[list[str]]:
    """Yield the device options for `mobilize bench`: the chosen phone, or an emulated one."""
    if serial:
        yield ["--serial", serial]
        return
    from mobilize.emulator.testing import running_emulator

    with running_emulator(out_dir / "emulated_device", accept_new_keys=True) as emulator:
        console.print(
            f"no phone chosen: started an emulated device at {emulator.serial} "
            "(it runs models with the TFLite interpreter on this computer's CPU)",
            highlight=False,
        )
        # A key of the demo's own: the emulated device needs none of the user's keys.
        yield ["--serial", emulator.serial, "--adb-key", str(out_dir / "adbkey")]


def run_demo_bench(out_dir: Path, serial: str | None, console: Console, debug: bool) -> int:
    """Benchmark every file of the demo export through `mobilize bench`; its exit code."""
    from mobilize.cli import main as mobilize

    with _demo_device(out_dir, serial, console) as device_args:
        bench_args = [
            "bench", str(out_dir), *device_args,
            "--runs", str(DEMO_RUNS), "--warmup", str(DEMO_WARMUP),
            "--threads", str(DEMO_THREADS),
            "--db", str(out_dir / "results.db"), "--json", str(out_dir / "bench.json"),
        ]
        console.print(f"$ mobilize {' '.join(bench_args)}", highlight=False)
        return mobilize(["--debug", *bench_args] if debug else bench_args)


def run(args: argparse.Namespace) -> int:
    from mobilize.exporter.report import RichProgress, comparison_table, print_failures

    console = Console()
    progress = RichProgress(console)
    console.print(f"demo: exporting {DEMO_MODEL} to "
                  f"{', '.join(target.value for target in DEMO_TARGETS)}",
                  highlight=False)
    try:
        result = run_demo_export(args.out, progress)
    finally:
        progress.close()
    console.print(comparison_table(result))
    print_failures(console, result)
    console.print(f"wrote {result.metadata_path}", highlight=False)
    if result.failed:
        return 1
    if args.no_bench:
        return 0
    return run_demo_bench(args.out, args.serial, console, args.debug)
