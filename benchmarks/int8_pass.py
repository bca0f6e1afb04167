"""int8 with and without one default ONNX pass, on unseen families.

    nice python -m benchmarks.int8_pass [--without PASS] [--runs 20] [--calib-samples 8]
        [NAME ...]

Each family (random seeded weights, at its `usual_size`; default: the three with
ConvTranspose2d layers) is exported twice with the exporter's defaults: once as fp32 + int8,
once as int8 with every default pass but --without (default
conv_transpose_as_depth_to_space, LiteRT's TRANSPOSE_CONV then kept). The three files are
timed interleaved, run by run, with 2 threads and then with 1 (LiteRT's interpreter,
XNNPACK), and each int8 file's SNR against PyTorch fp32 is measured on held-out photographs,
as benchmarks/unseen_suite.py does. Prints a markdown table; --json PATH keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.unseen_suite import (  # noqa: E402
    HELD_OUT,
    _latencies,
    _outputs,
    _photos,
    _snr_db,
    _to_range,
)
from mobilize.contract.specs import ValueRange  # noqa: E402
from mobilize.exporter.config import DEFAULT_ONNX_PASSES, ExportConfig, Target  # noqa: E402
from mobilize.exporter.inspect_tflite import delegate_coverage, inspect_graph  # noqa: E402
from mobilize.exporter.pipeline import run_export  # noqa: E402
from mobilize.photos import HELD_OUT_PHOTOS  # noqa: E402
from tests.exporter.unseen_families import FAMILIES  # noqa: E402

TRANSPOSED_FAMILIES = ("pix2pix_unet", "cyclegan_resnet", "fsrcnn")


def _export(name: str, size: int, targets: tuple[Target, ...], passes: tuple[str, ...],
            calib_samples: int, out_dir: Path) -> Path:
    family = FAMILIES[name]
    result = run_export(ExportConfig(
        model_ref=name, module=family.build(size), out_dir=out_dir, targets=targets,
        input_shapes=tuple((1, 3, size, size) for _ in family.input_names),
        input_names=family.input_names, input_ranges=(ValueRange(*family.input_range),),
        output_range=ValueRange(*family.output_range), calib_samples=calib_samples,
        verify_samples=2, onnx_passes=passes, int8_alternatives=False))
    return result.out_dir


def measure(name: str, calib_samples: int, runs: int, left_out: str) -> dict[str, object]:
    family = FAMILIES[name]
    size = family.usual_size
    low, high = family.input_range
    unit = _photos(HELD_OUT_PHOTOS, HELD_OUT, size, seed=7)
    inputs = [_to_range(np.roll(unit, shift, axis=0), low, high)
              for shift in range(len(family.input_names))]
    with torch.no_grad():
        reference = family.build(size)(*(torch.from_numpy(x) for x in inputs)).numpy()
    without = tuple(p for p in DEFAULT_ONNX_PASSES if p != left_out)
    with tempfile.TemporaryDirectory(prefix="transposed-conv-") as work_text:
        work = Path(work_text)
        rewritten = _export(name, size, (Target.FP32, Target.INT8), DEFAULT_ONNX_PASSES,
                            calib_samples, work / "rewritten")
        kept = _export(name, size, (Target.INT8,), without, calib_samples, work / "kept")
        contents = {"fp32": (rewritten / "model_fp32.tflite").read_bytes(),
                    "int8": (rewritten / "model_int8.tflite").read_bytes(),
                    "int8_without": (kept / "model_int8.tflite").read_bytes()}
    row: dict[str, object] = {"family": name, "size": size, "without": left_out}
    for threads in (2, 1):
        row[f"ms_{threads}_threads"] = {key: round(ms, 2) for key, ms in
                                        _latencies(contents, runs, threads).items()}
    for key, content in contents.items():
        partitions, outside = delegate_coverage(content)
        row[key] = {"kb": round(len(content) / 1024, 1),
                    "snr_db": round(_snr_db(reference, _outputs(content, family, inputs,
                                                                reference)), 2),
                    "ops": inspect_graph(content).op_histogram,
                    "partitions": partitions, "outside": outside}
    return row


def table(rows: list[dict]) -> str:
    """Each pair of cells: without the pass / with it (the default)."""
    lines = ["| family | size | int8 SNR | fp32 ms | int8 ms | int8/fp32 | 1 thread: fp32 / "
             "int8 ms | int8 KB | XNNPACK partitions |",
             "| --- | ---: | --- | ---: | --- | --- | --- | --- | --- |"]
    for row in rows:
        two, one = row["ms_2_threads"], row["ms_1_threads"]
        off, on = row["int8_without"], row["int8"]
        lines.append(
            f"| {row['family']} | {row['size']} | {off['snr_db']} / {on['snr_db']} | "
            f"{two['fp32']} | {two['int8_without']} / {two['int8']} | "
            f"{two['int8_without'] / two['fp32']:.2f} / {two['int8'] / two['fp32']:.2f} | "
            f"{one['fp32']} / {one['int8_without']} / {one['int8']} | {off['kb']} / "
            f"{on['kb']} | {off['partitions']} / {on['partitions']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(TRANSPOSED_FAMILIES))
    parser.add_argument("--without", default="conv_transpose_as_depth_to_space",
                        choices=DEFAULT_ONNX_PASSES)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calib-samples", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [measure(name, args.calib_samples, args.runs, args.without) for name in args.names]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
