"""`mobilize demo`: the main job end to end, with no phone needed.

Exports a bundled generator to fp32, fp16 and int8, then benchmarks each file on a device:
the phone chosen with --serial, or else an emulated device started for the demo. The
benchmark goes through the same `mobilize bench` command line a user types, so the demo
shows (and tests) exactly that path.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

from exporter.config import ExportConfig, Target
from exporter.pipeline import ExportResult, ProgressListener, run_export
from exporter.specs import InputSpec, ValueRange

DEMO_TARGETS = (Target.FP32, Target.FP16, Target.INT8)
DEMO_SIZE = 128
# Bundled generators, first importable wins; the last one lives here so the demo always runs.
DEMO_MODELS = ("models.style_student:build", "models.espcn:build", "exporter.demo:build_fallback")

INPUTS = (InputSpec("image", (1, 3, DEMO_SIZE, DEMO_SIZE), ValueRange(-1.0, 1.0)),)
OUTPUT_RANGE = ValueRange(-1.0, 1.0)


class _FallbackGenerator(nn.Module):
    """A small residual image-to-image generator (conv, instance norm, nearest upsample)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.InstanceNorm2d(width), nn.ReLU())
        self.decode = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.tanh(image + self.decode(self.encode(image)))


def build_fallback(pretrained: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return _FallbackGenerator().eval()


def pick_demo_model() -> str:
    for ref in DEMO_MODELS:
        module_name = ref.partition(":")[0]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if callable(getattr(module, ref.partition(":")[2], None)):
            return ref
    return DEMO_MODELS[-1]


def _demo_shape(ref: str) -> tuple[tuple[int, ...], ...]:
    """A modest size: the model's own INPUTS scaled to DEMO_SIZE (ESPCN keeps its LR size)."""
    module = importlib.import_module(ref.partition(":")[0])
    declared = getattr(module, "INPUTS", INPUTS)
    shapes = []
    for spec in declared:
        n, c, h, w = spec.shape
        scale = min(1.0, DEMO_SIZE / max(h, w))
        shapes.append((n, c, max(8, int(h * scale) // 4 * 4), max(8, int(w * scale) // 4 * 4)))
    return tuple(shapes)


def run_demo_export(out_dir: Path, progress: ProgressListener | None = None) -> ExportResult:
    """Export the demo generator to fp32, fp16 and int8 in out_dir; result.paths has the files."""
    ref = pick_demo_model()
    config = ExportConfig(model_ref=ref, out_dir=out_dir, targets=DEMO_TARGETS,
                          input_shapes=_demo_shape(ref), calib_samples=16)
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
    from device_bench.emulator.testing import running_emulator

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
    from exporter.cli import main as mobilize

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
    from exporter.report import RichProgress, comparison_table, print_failures

    console = Console()
    progress = RichProgress(console)
    console.print(f"demo: exporting {pick_demo_model()} to "
                  f"{', '.join(t.value for t in DEMO_TARGETS)}", highlight=False)
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
