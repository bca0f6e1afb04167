"""The unseen generator families at their usual size: our int8 against onnx2tf's and
litert-torch's own.

    nice python -m benchmarks.unseen_suite [--calib-samples 16] [--runs 10] [NAME ...]
        [--train-steps N] [--litert-torch PYTHON | --no-litert-torch] [--litert-timeout 900]

Every family of tests/exporter/unseen_families.py (random seeded weights: the int8 SNR says
what survives rounding, not what a trained net keeps; with --train-steps N, trained N Adam
steps first on a computable photo task, benchmarks/finetune_int8.py `trained_module`, as
weights users ship behave) at its `usual_size`, exported once with
the exporter's defaults to tflite-fp32 and tflite-int8. The int8 file's own ONNX graph (the
one our int8 was converted from, model_int8.onnx or model.onnx) then goes through onnx2tf's
CLI with -oiqt, calibrated on the same photographs (onnx2tf's -cind, the same crops in 0..1
with the mean/std that map them onto the family's input range), and its
`*_full_integer_quant.tflite` (int8 I/O, like ours) is measured beside ours. So is
litert-torch's (Google's direct PyTorch -> TFLite path): benchmarks/litert_torch_convert.py,
run with the Python of its own venv (benchmarks/litert_torch_env.sh makes .venv-litert, used
when it exists), builds the same family with the same seeded weights (their digest is
checked), quantizes it with litert-torch's PT2E recipe (per-channel symmetric int8 weights,
static int8 activations) calibrated on the same crops as onnx2tf (NCHW, in the family's
input range) and converts it; a family it cannot convert is reported with its error. Each
int8 file's I/O types are recorded, since litert-torch decides its own.

- SNR of each file against PyTorch fp32 on held-out photographs (mobilize.photos'
  HELD_OUT_PHOTOS, never used for calibration), through the same NCHW runner;
- fully integer (no float op but the I/O boundary; inspect_tflite);
- int8 size / our fp32 size, and int8 / fp32 latency: medians of `--runs` interleaved runs of
  all the files with 2 threads (LiteRT's interpreter, XNNPACK), after 3 warm-ups;
- XNNPACK partitions of each int8 file and the ops it leaves outside.

Prints a markdown table (the section of docs/benchmarks.md "Unseen families at their usual
size"); --json PATH keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.finetune_int8 import trained_module  # noqa: E402
from benchmarks.litert_torch_convert import (  # noqa: E402
    failure_reason,
    weights_digest,
)
from mobilize.contract.specs import ValueRange  # noqa: E402
from mobilize.contract.tflite_runner import NchwRunner, TfliteRunner  # noqa: E402
from mobilize.errors import MobilizeError  # noqa: E402
from mobilize.exporter.calibration import (  # noqa: E402
    ONNX2TF_SAMPLE_FILE,
    onnx2tf_sample_images,
    photo_crops,
)
from mobilize.exporter.config import ExportConfig, Target  # noqa: E402
from mobilize.exporter.inspect_tflite import (  # noqa: E402
    GraphReport,
    delegate_coverage,
    inspect_graph,
)
from mobilize.exporter.pipeline import run_export  # noqa: E402
from mobilize.photos import CALIBRATION_PHOTOS, HELD_OUT_PHOTOS  # noqa: E402
from tests.exporter.unseen_families import FAMILIES, UnseenFamily  # noqa: E402

ONNX2TF = Path(sys.executable).with_name("onnx2tf")
LITERT_CONVERTER = REPO / "benchmarks" / "litert_torch_convert.py"
LITERT_PYTHON = REPO / ".venv-litert" / "bin" / "python"  # benchmarks/litert_torch_env.sh
HELD_OUT = 4
THREADS = 2


@dataclass(frozen=True)
class LitertTorch:
    """Where litert-torch runs: its venv's Python, and how long one conversion may take."""

    python: Path
    timeout_s: float


def _photos(names: tuple[str, ...], count: int, size: int, seed: int) -> np.ndarray:
    """(N, 3, size, size) crops in 0..1."""
    return np.stack(photo_crops(names, count, size, size, seed)).transpose(0, 3, 1, 2)


def _to_range(unit: np.ndarray, low: float, high: float) -> np.ndarray:
    return (low + unit * (high - low)).astype(np.float32)


def _snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    error = float(np.mean((reference.astype(np.float64) - other) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(float(np.var(reference)) / error)


def _input_names(content: bytes, family: UnseenFamily) -> tuple[str, ...]:
    """The file's signature names of the family's inputs, in forward() order: ours and
    onnx2tf's keep the family's names, litert-torch names them args_0, args_1, ..."""
    if set(family.input_names) <= set(TfliteRunner(content).input_details):
        return family.input_names
    return tuple(tensor.name for tensor in inspect_graph(content).inputs)


def _outputs(content: bytes, family: UnseenFamily, inputs: list[np.ndarray],
             reference: np.ndarray) -> np.ndarray:
    names = _input_names(content, family)
    runner = NchwRunner(content, {name: inputs[i][:1].shape for i, name in enumerate(names)},
                        {name: reference[:1].shape
                         for name in TfliteRunner(content).output_details})
    results = []
    for index in range(len(reference)):
        feeds = {name: inputs[i][index:index + 1] for i, name in enumerate(names)}
        results.append(next(iter(runner(feeds).values())))
    return np.concatenate(results)


def _latencies(contents: dict[str, bytes], runs: int,
               threads: int = THREADS) -> dict[str, float]:
    """Median ms of one inference per file, the files interleaved run by run."""
    runners = {}
    for key, content in contents.items():
        runner = TfliteRunner(content, num_threads=threads)
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


def _litert_torch_int8(litert: LitertTorch, family: UnseenFamily, size: int, calib: np.ndarray,
                       model: torch.nn.Module, work: Path) -> tuple[bytes, float]:
    """litert-torch's PT2E int8 of the family with `model`'s weights, in its own venv,
    calibrated on `calib` (N, 3, H, W in 0..1) mapped onto the family's input range, the same
    crops for every input as onnx2tf gets."""
    low, high = family.input_range
    weights = work / "litert_weights.pt"
    torch.save(model.state_dict(), weights)
    arrays = []
    for name in family.input_names:
        arrays.append(work / f"litert_calib_{name}.npy")
        np.save(arrays[-1], _to_range(calib, low, high))
    out = work / "litert_torch_int8.tflite"
    start = time.perf_counter()
    done = subprocess.run([str(litert.python), str(LITERT_CONVERTER), family.name, str(size),
                           str(out), *map(str, arrays), "--weights", str(weights)],
                          cwd=REPO, capture_output=True, text=True, timeout=litert.timeout_s)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(failure_reason(done.returncode, done.stderr))
    converted = json.loads(done.stdout.strip().splitlines()[-1])
    # a different build would compare nothing
    if converted["weights_sha256"] != weights_digest(model):
        raise RuntimeError("litert-torch's build of the family has other weights than ours")
    return out.read_bytes(), seconds


def measure(name: str, calib_samples: int, runs: int, size: int | None,
            litert: LitertTorch | None = None, train_steps: int = 0) -> dict[str, object]:
    family = FAMILIES[name]
    size = size or family.usual_size
    model = trained_module(name, size, train_steps) if train_steps else family.build(size)
    low, high = family.input_range
    unit = _photos(HELD_OUT_PHOTOS, HELD_OUT, size, seed=7)
    inputs = [_to_range(np.roll(unit, shift, axis=0), low, high)
              for shift in range(len(family.input_names))]
    with torch.no_grad():
        reference = model(*(torch.from_numpy(x) for x in inputs)).numpy()
    row: dict[str, object] = {"family": name, "size": size, "train_steps": train_steps}
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
        ranges = artifacts["tflite-int8"].get("int8_ranges") or {}
        row["int8_ranges"] = {"chosen": ranges.get("chosen"),
                              "rmse_by_candidate": ranges.get("rmse_by_candidate", {})}
        row["graphs"] = len(metadata["onnx"]["graphs"])
        row["warnings"] = metadata["warnings"]
        calib = _photos(CALIBRATION_PHOTOS, calib_samples, size, seed=3)
        onnx_file = result.out_dir / artifacts["tflite-int8"]["onnx"]["file"]
        try:
            contents["onnx2tf"], row["onnx2tf_s"] = _onnx2tf_int8(onnx_file, family, size,
                                                                  calib, work)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            row["onnx2tf_error"] = str(error)
        if litert is not None:
            try:
                contents["litert"], row["litert_s"] = _litert_torch_int8(
                    litert, family, size, calib, model, work)
            except RuntimeError as error:
                row["litert_error"] = str(error)
            except subprocess.TimeoutExpired:
                row["litert_error"] = f"no file after {litert.timeout_s:.0f} s (timed out)"
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
            figures.update(fully_integer=graph.fully_integer, io=_io_types(graph),
                           size_ratio=round(len(content) / len(contents["fp32"]), 3),
                           latency_ratio=round(latency[key] / latency["fp32"], 3),
                           partitions=partitions, outside=outside)
        row[key] = figures
    return row


def _io_types(graph: GraphReport) -> str:
    """'int8' when inputs and outputs have that one type, else 'float32 in, int8 out'."""
    types = {side: "/".join(sorted({t.dtype for t in tensors}))
             for side, tensors in (("in", graph.inputs), ("out", graph.outputs))}
    return types["in"] if types["in"] == types["out"] else f"{types['in']} in, {types['out']} out"


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


TOOLS = (("int8", "ours"), ("onnx2tf", "onnx2tf"), ("litert", "litert-torch"))
TOOL_NAMES = " / ".join(name for _, name in TOOLS)


def table(rows: list[dict]) -> str:
    """Two markdown tables (quality and size; speed), each cell ours / onnx2tf / litert-torch,
    then why a tool made no file and the I/O types litert-torch chose."""
    lines = [f"| family | size | fp32 SNR | int8 SNR ({TOOL_NAMES}) | fully integer | "
             "int8/fp32 size |", "| --- | ---: | ---: | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['family']} | {row['size']} | {_cell(row, 'fp32', 'snr_db', 1)} | "
                     f"{_per_tool(row, 'snr_db', 1)} | {_per_tool(row, 'fully_integer')} | "
                     f"{_per_tool(row, 'size_ratio')} |")
    lines += ["", f"| family | fp32 ms | int8 ms ({TOOL_NAMES}) | int8/fp32 ms | "
              f"XNNPACK partitions (ops outside): {TOOL_NAMES} |",
              "| --- | ---: | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['family']} | {_cell(row, 'fp32', 'ms', 1)} | "
                     f"{_per_tool(row, 'ms', 1)} | {_per_tool(row, 'latency_ratio')} | "
                     f"{' / '.join(_outside(row, key) for key, _ in TOOLS)} |")
    return "\n".join(lines + _tool_notes(rows))


def _per_tool(row: dict, field: str, digits: int = 2) -> str:
    """One figure per tool, '-' for a tool not run and 'fails' for one that made no file."""
    return " / ".join("fails" if f"{key}_error" in row else _cell(row, key, field, digits)
                      for key, _ in TOOLS)


def _tool_notes(rows: list[dict]) -> list[str]:
    notes = []
    for row in rows:
        for key, name in TOOLS:
            if f"{key}_error" in row:
                notes.append(f"- {row['family']}: {name} fails: {_short(row[key + '_error'])}")
        io = (row.get("litert") or {}).get("io")
        if io and io != "int8":
            notes.append(f"- {row['family']}: litert-torch's file has {io} I/O")
    return ["", *notes] if notes else []


def _short(reason: str, limit: int = 120) -> str:
    """An error line fit for a table cell: source locations out, pipes escaped, cut."""
    reason = re.sub(r"\S+\.py:\d+(:\d+)?: ", "", reason).replace("|", "\\|")
    return reason if len(reason) <= limit else reason[:limit - 3] + "..."


def _litert_torch(args: argparse.Namespace) -> LitertTorch | None:
    """Where to run litert-torch, or None to leave it out (a note says why)."""
    if args.no_litert_torch:
        return None
    python = args.litert_torch or (LITERT_PYTHON if LITERT_PYTHON.exists() else None)
    if python is None:
        print("litert-torch: not measured (no --litert-torch and no "
              f"{LITERT_PYTHON.relative_to(REPO)}; see benchmarks/litert_torch_env.sh)",
              file=sys.stderr)
        return None
    return LitertTorch(python, args.litert_timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *sorted(FAMILIES)], default=[],
                        metavar="NAME", help=f"families (default all: {', '.join(FAMILIES)})")
    parser.add_argument("--calib-samples", type=int, default=16)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", type=int, help="one size for all (default each usual_size)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--train-steps", type=int, default=0, metavar="N",
                        help="train each family N steps first (benchmarks/finetune_int8.py "
                             "trained_module, cached under out/); default 0: seeded init")
    parser.add_argument("--litert-torch", type=Path, metavar="PYTHON",
                        help="the Python of litert-torch's venv (default "
                             f"{LITERT_PYTHON.relative_to(REPO)} when it exists)")
    parser.add_argument("--no-litert-torch", action="store_true",
                        help="do not measure litert-torch")
    parser.add_argument("--litert-timeout", type=float, default=900,
                        help="seconds one litert-torch conversion may take (default 900)")
    args = parser.parse_args(argv)
    litert = _litert_torch(args)
    torch.set_num_threads(THREADS)
    rows = []
    start = time.perf_counter()
    for name in args.names or list(FAMILIES):
        family_start = time.perf_counter()
        try:
            row = measure(name, args.calib_samples, args.runs, args.size, litert,
                          args.train_steps)
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
