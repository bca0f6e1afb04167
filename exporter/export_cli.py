"""`mobilize export`: a thin layer from arguments to ExportConfig and back to the terminal."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from mobilize.console import add_json_option, json_goes_to_stdout, write_json
from mobilize.contract.specs import ValueRange, parse_shape
from mobilize.errors import UsageError
from mobilize.exporter.config import (
    ALL_TARGETS,
    DEFAULT_CALIB_SAMPLES,
    DEFAULT_ONNX_PASSES,
    DEFAULT_OPSET,
    DEFAULT_VERIFY_SAMPLES,
    FINETUNE_DEVICES,
    CalibSource,
    ExportConfig,
    Int8Ranges,
    IoType,
    Target,
)
from mobilize.exporter.onnx_rewrites import REWRITE_PASSES

ALL = "all"
T = TypeVar("T")
NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+(,-?[\d.]+)+$")


def _argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """argparse reports ArgumentTypeError as a usage message with exit 2."""

    def parse_argument(text: str) -> T:
        try:
            return parse(text)
        except UsageError as error:
            raise argparse.ArgumentTypeError(f"{error.message} ({error.hint})") from error

    parse_argument.__name__ = getattr(parse, "__name__", "value")
    return parse_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="convert a PyTorch generator to TFLite (fp32/fp16/dynamic/int8/int16x8) and verify it",
        description="PyTorch -> ONNX -> onnx2tf -> TFLite, verified against PyTorch on held-out "
        "photographs. Writes the .tflite files, model.onnx, verify_*.png and metadata.json.",
    )
    # `--range -1,1` must read as a value, not as an option: argparse only knows plain
    # negative numbers, so teach this parser number lists too.
    parser._negative_number_matcher = NEGATIVE_VALUE
    parser.add_argument("model", help="package.module:factory, path/to/file.py:factory, or a "
                        "TorchScript (.pt) / ExportedProgram (.pt2) file")
    parser.add_argument("--target", action="append", choices=[t.value for t in Target] + [ALL],
                        help="output format; repeat it or give 'all' (default tflite-int8)")
    parser.add_argument("--out", type=Path, help="output folder (default out/<model name>)")
    parser.add_argument("--weights", type=Path, help="a state_dict file to load into the model")
    parser.add_argument("--input", action="append", type=_argument_type(parse_shape), default=[],
                        metavar="NxCxHxW", help="input shape, once per input (default: the "
                        "model module's INPUTS)")
    parser.add_argument("--input-name", action="append", default=[], metavar="NAME",
                        help="input name, once per input")
    parser.add_argument("--range", action="append", type=_argument_type(ValueRange.parse),
                        default=[], metavar="RANGE",
                        help="value range each input expects: 0,1 | -1,1 | 0,255 | "
                        "mean=a,b,c:std=d,e,f (once, or once per input)")
    parser.add_argument("--output-range", type=_argument_type(ValueRange.parse), metavar="RANGE",
                        help="value range of the output (for PSNR; default the module's "
                        "OUTPUT_RANGE, else the range PyTorch's output spans)")
    parser.add_argument("--io", choices=[t.value for t in IoType], default=IoType.INT8.value,
                        help="input/output type of tflite-int8 (uint8 for camera frames, float "
                        "to keep float I/O); default int8")
    parser.add_argument("--int8-ranges", choices=[r.value for r in Int8Ranges],
                        default=Int8Ranges.AUTO.value,
                        help="activation ranges of tflite-int8: minmax (the converter's own, "
                        "over all samples), quantile (median of each sample's min/max), auto "
                        "(the quantile closest to float on a quarter of the calibration "
                        "samples; default)")
    parser.add_argument("--debug-quant", action="store_true",
                        help="with tflite-int8: per-layer int8 error, worst first, printed and "
                        "written to metadata.json (quant_debug)")
    parser.add_argument("--finetune", type=int, default=0, metavar="STEPS",
                        help="with tflite-int8 alone: STEPS of quantization-aware fine-tuning "
                        "towards the model's own fp32 output on the calibration samples before "
                        "converting (weights written to finetuned.pt; verification still "
                        "against the original model; Ctrl-C keeps the best state)")
    parser.add_argument("--no-alternatives", dest="int8_alternatives", action="store_false",
                        help="when tflite-int8 keeps under 30 dB SNR, do not convert and time "
                        "tflite-dynamic, fp16 and int16x8 on this model for the advice")
    parser.add_argument("--finetune-device", choices=FINETUNE_DEVICES, default="cpu",
                        help="torch device of --finetune (default cpu)")
    parser.add_argument("--calib-dir", action="append", type=CalibSource.parse, default=[],
                        metavar="[INPUT=]PATH", help="calibration images (folder of png/jpg) or "
                        ".npy/.npz arrays; INPUT=PATH once per input of a multi-input model "
                        "(default: photographs bundled with scikit-image)")
    parser.add_argument("--calib-samples", type=int, default=DEFAULT_CALIB_SAMPLES, metavar="N",
                        help=f"calibration samples (default {DEFAULT_CALIB_SAMPLES})")
    parser.add_argument("--verify-samples", type=int, default=DEFAULT_VERIFY_SAMPLES,
                        metavar="N", help="held-out samples for verification "
                        f"(default {DEFAULT_VERIFY_SAMPLES})")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    parser.add_argument("--onnx-passes", type=_argument_type(parse_passes),
                        default=DEFAULT_ONNX_PASSES, metavar="LIST",
                        help="ONNX rewrites before onnx2tf, comma-separated, or 'none' "
                        f"(default {','.join(DEFAULT_ONNX_PASSES)}; known: "
                        f"{', '.join(REWRITE_PASSES)})")
    parser.add_argument("--min-psnr", type=float, metavar="DB",
                        help="exit 6 when any target's worst-image PSNR vs PyTorch (on the "
                        "held-out images) is below DB")
    add_json_option(parser, "metadata.json's content (artifacts, verification, failures)")
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    requested = args.target or [Target.INT8.value]
    targets = ALL_TARGETS if ALL in requested else tuple(dict.fromkeys(Target(t)
                                                                       for t in requested))
    out = args.out or Path("out") / _model_stem(args.model)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", hint="give a folder for the export")
    return ExportConfig(
        model_ref=args.model,
        out_dir=out,
        targets=targets,
        input_shapes=tuple(args.input),
        input_ranges=tuple(args.range),
        input_names=tuple(args.input_name),
        output_range=args.output_range,
        weights=args.weights,
        io=IoType(args.io),
        calib_sources=tuple(args.calib_dir),
        calib_samples=args.calib_samples,
        verify_samples=args.verify_samples,
        opset=args.opset,
        onnx_passes=args.onnx_passes,
        min_psnr=args.min_psnr,
        int8_ranges=Int8Ranges(args.int8_ranges),
        debug_quant=args.debug_quant,
        finetune_steps=args.finetune,
        finetune_device=args.finetune_device,
        int8_alternatives=args.int8_alternatives,
    )


def parse_passes(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in REWRITE_PASSES]
    if unknown:
        raise UsageError(f"unknown ONNX rewrite {', '.join(unknown)}",
                         hint=f"known rewrites: {', '.join(REWRITE_PASSES)}, or none")
    return names


def _model_stem(ref: str) -> str:
    base = ref.rpartition(":")[0] or ref
    return Path(base).stem.split(".")[-1] or "model"


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    from mobilize.exporter.pipeline import check_outcome, run_export
    from mobilize.exporter.quant_debug import render_table
    from mobilize.exporter.report import RichProgress, comparison_table, print_failures

    json_target = getattr(args, "json", None)
    # With --json -, stdout carries the JSON alone: progress and tables go to stderr.
    console = console or Console(stderr=json_goes_to_stdout(json_target))
    config = config_from_args(args)
    progress = RichProgress(console)
    try:
        result = run_export(config, progress, native_logs=bool(getattr(args, "debug", False)))
    finally:
        progress.close()
    console.print(comparison_table(result))
    for target in result.targets:
        if target.quant_debug is not None:
            console.print(render_table(target.quant_debug))
    print_failures(console, result)
    console.print(f"wrote {result.metadata_path}", highlight=False)
    if json_target:
        write_json(json_target, json.loads(result.metadata_path.read_text()))
    check_outcome(config, result)
    return 0
