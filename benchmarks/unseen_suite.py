"""The unseen generator families at their usual size: our int8 against onnx2tf's own.

    nice python -m benchmarks.unseen_suite [--calib-samples 16] [--runs 10] [NAME ...]

Every family of tests/exporter/unseen_families.py (random seeded weights: the int8 SNR says
what survives rounding, not what a trained net keeps) at its `usual_size`, exported once with
the exporter's defaults to tflite-fp32 and tflite-int8. The int8 file's own ONNX graph (the
one our int8 was converted from, model_int8.onnx or model.onnx) then goes through onnx2tf's
CLI with -oiqt, calibrated on the same photographs (onnx2tf's -cind, the same crops in 0..1
with the mean/std that map them onto the family's input range), and its
`*_full_integer_quant.tflite` (int8 I/O, like ours) is measured beside ours:

- SNR of each file against PyTorch fp32 on held-out photographs (mobilize.photos'
  HELD_OUT_PHOTOS, never used for calibration), through the same NCHW runner;
- fully integer (no float op but the I/O boundary; inspect_tflite);
- int8 size / our fp32 size, and int8 / fp32 latency: medians of `--runs` interleaved runs of
  all three files with 2 threads (LiteRT's interpreter, XNNPACK), after 3 warm-ups;
- XNNPACK partitions of each int8 file and the ops it leaves outside.

litert-torch (PyTorch -> TFLite directly) is not installed here and is not measured.
Prints a markdown table (the section of docs/benchmarks.md "Unseen families at their usual
size"); --json PATH keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mobilize.contract.specs import ValueRange  # noqa: E402
from mobilize.contract.tflite_runner import NchwRunner, TfliteRunner  # noqa: E402
from mobilize.errors import MobilizeError  # noqa: E402
from mobilize.exporter.calibration import (  # noqa: E402
    ONNX2TF_SAMPLE_FILE,
    onnx2tf_sample_images,
    photo_crops,
)
from mobilize.exporter.config import ExportConfig, Target  # noqa: E402
from mobilize.exporter.inspect_tflite import delegate_coverage, inspect_graph  # noqa: E402
from mobilize.exporter.pipeline import run_export  # noqa: E402
from mobilize.photos import CALIBRATION_PHOTOS, HELD_OUT_PHOTOS  # noqa: E402
from tests.exporter.unseen_families import FAMILIES, UnseenFamily  # noqa: E402

ONNX2TF = Path(sys.executable).with_name("onnx2tf")
HELD_OUT = 4
THREADS = 2


def _photos(names: tuple[str, ...], count: int, size: int, seed: int) -> np.ndarray:
    """(N, 3, size, size) crops in 0..1."""
    return np.stack(photo_crops(names, count, size, size, seed)).transpose(0, 3, 1, 2)


def _to_range(unit: np.ndarray, low: float, high: float) -> np.ndarray:
    return (low + unit * (high - low)).astype(np.float32)


def _snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    error = float(np.mean((reference.astype(np.float64) - other) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(float(np.var(reference)) / error)


def _outputs(content: bytes, family: UnseenFamily, inputs: list[np.ndarray],
             reference: np.ndarray) -> np.ndarray:
    runner = NchwRunner(content, {name: inputs[i][:1].shape
                                  for i, name in enumerate(family.input_names)},
                        {name: reference[:1].shape
                         for name in TfliteRunner(content).output_details})
    results = []
    for index in range(len(reference)):
        feeds = {name: inputs[i][index:index + 1] for i, name in enumerate(family.input_names)}
        results.append(next(iter(runner(feeds).values())))
    return np.concatenate(results)


def _latencies(contents: dict[str, bytes], runs: int) -> dict[str, float]:
    """Median ms of one inference per file, the files interleaved run by run."""
    runners = {}
    for key, content in contents.items():
        runner = TfliteRunner(content, num_threads=THREADS)
        feeds = {name: np.zeros(detail["shape"], detail["dtype"])
                 for name, detail in runner.input_details.items()}
        for _ in range(3):
            runner.runner(**feeds)
        runners[key] = runner, feeds
    times: dict[str, list[float]] = {key: [] for key in contents}
    for _ in range(runs):
        for key, (runner, feeds) in runners.items():
            start = time.perf_counter()
            runner.runner(**feeds)
            times[key].append((time.perf_counter() - start) * 1000)
    return {key: statistics.median(values) for key, values in times.items()}


def _onnx2tf_int8(onnx_path: Path, family: UnseenFamily, size: int, calib: np.ndarray,
                  work: Path) -> tuple[bytes, float]:
    """onnx2tf -oiqt on `onnx_path`, calibrated on `calib` (N, 3, H, W in 0..1)."""
    low, high = family.input_range
    mean, std = -low / (high - low), 1.0 / (high - low)  # (x01 - mean) / std = model input
    np.save(work / ONNX2TF_SAMPLE_FILE, onnx2tf_sample_images())  # never downloaded
    command = [str(ONNX2TF), "-i", str(onnx_path), "-o", str(work / "onnx2tf"), "-oiqt",
               "-coion", "-n"]
    for name in family.input_names:
        path = work / f"calib_{name}.npy"
        np.save(path, calib.transpose(0, 2, 3, 1).astype(np.float32))
        command += ["-cind", name, str(path), f"[[[[{mean},{mean},{mean}]]]]",
                    f"[[[[{std},{std},{std}]]]]"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    files = sorted((work / "onnx2tf").glob("*_full_integer_quant.tflite"))
    if done.returncode != 0 or not files:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"onnx2tf -oiqt failed ({done.returncode}): {' | '.join(tail)}")
    return files[0].read_bytes(), seconds


def measure(name: str, calib_samples: int, runs: int, size: int | None) -> dict[str, object]:
    family = FAMILIES[name]
    size = size or family.usual_size
    model = family.build(size)
    low, high = family.input_range
    unit = _photos(HELD_OUT_PHOTOS, HELD_OUT, size, seed=7)
    inputs = [_to_range(np.roll(unit, shift, axis=0), low, high)
              for shift in range(len(family.input_names))]
    with torch.no_grad():
        reference = model(*(torch.from_numpy(x) for x in inputs)).numpy()
    row: dict[str, object] = {"family": name, "size": size}
    with tempfile.TemporaryDirectory(prefix="unseen-suite-") as work_text:
        work = Path(work_text)
        start = time.perf_counter()
        result = run_export(ExportConfig(
            model_ref=name, module=model, out_dir=work / "export",
            targets=(Target.FP32, Target.INT8),
            input_shapes=tuple((1, 3, size, size) for _ in family.input_names),
            input_names=family.input_names, input_ranges=(ValueRange(low, high),),
            output_range=ValueRange(*family.output_range), calib_samples=calib_samples,
            verify_samples=2,
            # the int8 advice's extra conversions are not what this compares; export_s
            # stays the time of the two targets
            int8_alternatives=False))
        row["export_s"] = round(time.perf_counter() - start, 1)
        metadata = json.loads(result.metadata_path.read_text())
        artifacts = {a["target"]: a for a in metadata["artifacts"]}
        contents = {"fp32": (result.out_dir / "model_fp32.tflite").read_bytes(),
                    "int8": (result.out_dir / "model_int8.tflite").read_bytes()}
        row["rewrites_int8"] = artifacts["tflite-int8"]["onnx"]["rewrites"]
        row["graphs"] = len(metadata["onnx"]["graphs"])
        row["warnings"] = metadata["warnings"]
        calib = _photos(CALIBRATION_PHOTOS, calib_samples, size, seed=3)
        onnx_file = result.out_dir / artifacts["tflite-int8"]["onnx"]["file"]
        try:
            contents["onnx2tf"], row["onnx2tf_s"] = _onnx2tf_int8(onnx_file, family, size,
                                                                  calib, work)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            row["onnx2tf_error"] = str(error)
    latency = _latencies(contents, runs)
    for key, content in contents.items():
        figures: dict[str, object] = {"kb": round(len(content) / 1024, 1),
                                      "ms": round(latency[key], 2)}
        try:
            figures["snr_db"] = round(_snr_db(reference, _outputs(content, family, inputs,
                                                                  reference)), 2)
        except (RuntimeError, ValueError) as error:
            figures["snr_db"], figures["error"] = None, str(error).splitlines()[0]
        if key != "fp32":
            graph = inspect_graph(content)
            partitions, outside = delegate_coverage(content)
            figures.update(fully_integer=graph.fully_integer,
                           size_ratio=round(len(content) / len(contents["fp32"]), 3),
                           latency_ratio=round(latency[key] / latency["fp32"], 3),
                           partitions=partitions, outside=outside)
        row[key] = figures
    return row


def _cell(row: dict, key: str, field: str, digits: int = 2) -> str:
    value = (row.get(key) or {}).get(field)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _outside(row: dict, key: str) -> str:
    figures = row.get(key) or {}
    if "partitions" not in figures:
        return "-"
    ops = ", ".join(f"{op} {n}" for op, n in figures["outside"].items())
    return f"{figures['partitions']}" + (f" ({ops})" if ops else "")


def table(rows: list[dict]) -> str:
    lines = ["| family | size | fp32 SNR | int8 SNR | onnx2tf SNR | int8 fully int. | "
             "onnx2tf fully int. | int8/fp32 size | onnx2tf/fp32 size | fp32 ms | int8 ms | "
             "onnx2tf ms | int8/fp32 ms | onnx2tf/fp32 ms | int8 XNNPACK partitions "
             "(ops outside) | onnx2tf partitions (ops outside) |",
             "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | "
             "---: | ---: | ---: | --- | --- |"]
    for row in rows:
        lines.append(
            f"| {row['family']} | {row['size']} | {_cell(row, 'fp32', 'snr_db', 1)} | "
            f"{_cell(row, 'int8', 'snr_db', 1)} | {_cell(row, 'onnx2tf', 'snr_db', 1)} | "
            f"{_cell(row, 'int8', 'fully_integer')} | {_cell(row, 'onnx2tf', 'fully_integer')} | "
            f"{_cell(row, 'int8', 'size_ratio')} | {_cell(row, 'onnx2tf', 'size_ratio')} | "
            f"{_cell(row, 'fp32', 'ms', 1)} | {_cell(row, 'int8', 'ms', 1)} | "
            f"{_cell(row, 'onnx2tf', 'ms', 1)} | {_cell(row, 'int8', 'latency_ratio')} | "
            f"{_cell(row, 'onnx2tf', 'latency_ratio')} | {_outside(row, 'int8')} | "
            f"{_outside(row, 'onnx2tf')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *sorted(FAMILIES)], default=[],
                        metavar="NAME", help=f"families (default all: {', '.join(FAMILIES)})")
    parser.add_argument("--calib-samples", type=int, default=16)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", type=int, help="one size for all (default each usual_size)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    rows = []
    start = time.perf_counter()
    for name in args.names or list(FAMILIES):
        family_start = time.perf_counter()
        try:
            row = measure(name, args.calib_samples, args.runs, args.size)
        except MobilizeError as error:
            row = {"family": name, "size": args.size or FAMILIES[name].usual_size,
                   "error": error.message}
        rows.append(row)
        print(f"{name}: {time.perf_counter() - family_start:.0f} s "
              f"{json.dumps(row, default=str)}", file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(table(rows))
    print(f"\n{len(rows)} families in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
