"""Export quality: every generator family at 256x256 to every TFLite target, in one run.

    python benchmarks/export_quality.py [--size 256] [--runs 20] [--write docs/benchmarks.md]
    python benchmarks/export_quality.py --models [--runs 10] [--write docs/benchmarks.md]

For each family (the inline test families of tests/exporter/families.py, random init, and
any bundled models/ module that imports) and each target: PSNR and SNR of the .tflite
against PyTorch fp32 on held-out real photographs (scikit-image photos never used for
calibration), SSIM, file size, export seconds (the shared stages load/ONNX/clean/onnx2tf
plus this target's conversion and verification), and the median latency of one inference
in LiteRT's interpreter on this CPU with 2 threads (XNNPACK, after warm-up).
With --write the table replaces this script's own section of the given markdown file.

--trained-families [--steps 300]: the inline families twice, as random-init nets and trained
for a few hundred steps on models/' tasks (benchmarks/trained_families.py), fp32 and int8 side
by side, with each int8 file's input cap (section "int8 on unseen architectures").

--models: only the trained models of models/ (their INPUTS, 256x256; ESPCN 86x86 in, x3 out),
tflite-fp32 and tflite-int8 with the exporter's default int8 ranges (the quantile chosen on
a quarter of the calibration samples): PSNR/SNR vs PyTorch fp32 on the held-out photos, int8
and fp32 median latency side by side, the chosen quantile (section "int8 on the trained
models (issue 7)").
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mobilize.contract.tflite_runner import TfliteRunner  # noqa: E402
from mobilize.errors import MobilizeError  # noqa: E402
from mobilize.exporter.config import (  # noqa: E402
    ALL_TARGETS,
    DEFAULT_ONNX_PASSES,
    ExportConfig,
    Int8Ranges,
    Target,
)
from mobilize.exporter.pipeline import run_export  # noqa: E402
from tests.exporter.families import FAMILIES  # noqa: E402

SECTION = "## Export quality: PyTorch fp32 vs each TFLite target"
MODELS_SECTION = "## int8 on the trained models (issue 7)"
TRAINED_SECTION = "## int8 on unseen architectures: random init vs briefly trained (issue 7)"
MODEL_TARGETS = (Target.FP32, Target.INT8)
FAMILIES_FILE = REPO / "tests" / "exporter" / "families.py"
BUNDLED = ("fast_style", "style_student", "tiny_style", "espcn", "unet", "adain")
INSTANCE_NORM_FAMILIES = ("johnson", "cyclegan")
SHARED_STAGES = ("load", "onnx", "clean", "onnx2tf", "data")


@dataclass(frozen=True)
class Row:
    family: str
    target: str
    psnr: float | None
    snr: float | None
    ssim: float | None
    kib: float | None
    export_s: float
    latency_ms: float | None
    note: str = ""
    cap_snr: float | None = None  # PyTorch on the file's rounded input (verify.input_bound)


def configs(size: int, out_root: Path) -> list[tuple[str, ExportConfig]]:
    found = []
    for name, family in FAMILIES.items():
        # SR: the low-resolution input is half the size so the output is size x size.
        side = size // 2 if name == "espcn" else size
        found.append((f"{name} (inline)", ExportConfig(
            model_ref=f"{FAMILIES_FILE}:build_{name}", out_dir=out_root / name,
            targets=ALL_TARGETS, input_shapes=tuple(s.shape for s in family.inputs(side)),
            input_ranges=(family.value_range,), input_names=family.input_names,
            output_range=family.value_range, calib_samples=32, verify_samples=8)))
    for name in INSTANCE_NORM_FAMILIES:  # the same nets with InstanceNorm kept whole
        base = dict(found)[f"{name} (inline)"]
        found.append((f"{name} (inline), InstanceNorm not decomposed",
                      replace(base, out_dir=out_root / f"{name}_whole",
                              onnx_passes=("constants_to_initializers",),
                              targets=(Target.INT8, Target.INT16X8))))
    for module_name in BUNDLED:
        try:
            importlib.import_module(f"mobilize.models.{module_name}")
        except ImportError:
            continue
        found.append((f"mobilize.models.{module_name}", ExportConfig(
            model_ref=f"mobilize.models.{module_name}:build", out_dir=out_root / module_name,
            targets=ALL_TARGETS, calib_samples=32, verify_samples=8)))
    return found


@dataclass(frozen=True)
class ModelRow:
    model: str
    fp32: Row
    int8: Row
    minmax: Row  # the converter's own min/max ranges, for comparison
    quantile: float | None
    rmse_by_quantile: dict[str, float]


def measure_model(name: str, out_root: Path, runs: int) -> ModelRow | None:
    """fp32 and int8 (default ranges) of one trained model; None when it does not import."""
    try:
        importlib.import_module(f"mobilize.models.{name}")
    except ImportError:
        return None
    config = ExportConfig(model_ref=f"mobilize.models.{name}:build", out_dir=out_root / name,
                          targets=MODEL_TARGETS, calib_samples=32, verify_samples=8)
    rows = {row.target: row for row in measure(name, config, runs, timed=False)}
    missing = Row(name, "-", None, None, None, None, 0.0, None, "failed")
    minmax_config = replace(config, out_dir=out_root / f"{name}_minmax", targets=(Target.INT8,),
                            int8_ranges=Int8Ranges.MINMAX)
    minmax = measure(name, minmax_config, runs, timed=False)[0]
    fp32 = rows.get(Target.FP32.value, rows.get("all", missing))
    int8 = rows.get(Target.INT8.value, rows.get("all", missing))
    files = {"fp32": config.out_dir / "model_fp32.tflite", "int8": config.out_dir /
             "model_int8.tflite", "minmax": minmax_config.out_dir / "model_int8.tflite"}
    if all(path.is_file() for path in files.values()):
        # the ratio is the figure: the three files take turns, so load on the shared CPU
        # falls on all of them alike
        latency = interleaved_latency_ms({k: p.read_bytes() for k, p in files.items()}, runs)
        fp32, int8 = (replace(fp32, latency_ms=latency["fp32"]),
                      replace(int8, latency_ms=latency["int8"]))
        minmax = replace(minmax, latency_ms=latency["minmax"])
    ranges: dict = {}
    metadata_path = config.out_dir / "metadata.json"
    if metadata_path.exists():
        artifacts = json.loads(metadata_path.read_text())["artifacts"]
        ranges = next((a.get("int8_ranges") or {} for a in artifacts
                       if a["target"] == Target.INT8.value), {})
    return ModelRow(name, fp32, int8, minmax, ranges.get("quantile"),
                    ranges.get("rmse_by_quantile", {}))


def models_markdown(rows: list[ModelRow], runs: int, seconds: float) -> str:
    lines = [
        MODELS_SECTION, "",
        f"`python benchmarks/export_quality.py --models --runs {runs} --write "
        f"docs/benchmarks.md` ({platform.machine()}, 2 cores shared with other jobs; "
        f"{seconds:.0f} s in all). The committed weights of models/ at their INPUTS (256x256; "
        "ESPCN 86x86 in, x3 out), `mobilize export`'s defaults: ONNX rewrites "
        f"{', '.join(DEFAULT_ONNX_PASSES)}; tflite-int8 with "
        "int8 I/O and per-sample quantile ranges, the quantile (0.35/0.5/0.75) chosen by output "
        "RMSE vs the float model on 8 of the 32 calibration crops (24 calibrate). PSNR/SNR: "
        "the .tflite against PyTorch fp32 on the 8 held-out crops (photos calibration never "
        "saw), PSNR over the output's declared range. Latency: median of one inference, 2 "
        f"threads, {runs} runs after 3 warm-ups, the fp32, int8 and min/max int8 files taking "
        "turns run by run (the CPU is shared: compare within a row). 'min/max int8': the "
        "converter's own ranges "
        "(`--int8-ranges minmax`), exported apart for comparison. With sqrt_as_rsqrt a default "
        "pass, the AdaIN int16x8 that failed at SQRT in the table above now converts and runs "
        "(tests/exporter/test_families.py::test_adain_int16x8_runs_after_sqrt_as_rsqrt).",
        "",
        "| model | int8 PSNR dB | int8 SNR dB | int8 input cap SNR dB | "
        "min/max int8 PSNR / SNR dB | fp32 PSNR dB | "
        "chosen q | validation RMSE by q | fp32 ms | int8 ms | min/max int8 ms | int8 |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        rmse = " / ".join(f"{q}: {v:.4f}" for q, v in r.rmse_by_quantile.items()) or "-"
        lines.append(
            f"| {r.model} | {_fmt(r.int8.psnr, 1)} | {_fmt(r.int8.snr, 1)} | "
            f"{_fmt(r.int8.cap_snr, 1)} | "
            f"{_fmt(r.minmax.psnr, 1)} / {_fmt(r.minmax.snr, 1)} | "
            f"{_fmt(r.fp32.psnr, 1)} | {r.quantile if r.quantile is not None else '-'} | "
            f"{rmse} | {_fmt(r.fp32.latency_ms, 2)} | {_fmt(r.int8.latency_ms, 2)} | "
            f"{_fmt(r.minmax.latency_ms, 2)} | "
            f"{r.int8.note.replace('|', '/')[:120]} |")
    return "\n".join(lines) + "\n"


def run_models(runs: int, write: Path | None) -> int:
    start = time.perf_counter()
    rows: list[ModelRow] = []
    with tempfile.TemporaryDirectory(prefix="export-quality-models-") as work:
        for name in BUNDLED:
            print(f"exporting mobilize.models.{name} ...", flush=True)
            row = measure_model(name, Path(work), runs)
            if row is None:
                continue
            rows.append(row)
            print(f"  int8 PSNR {_fmt(row.int8.psnr, 1)} dB (q {row.quantile}), "
                  f"{_fmt(row.int8.latency_ms, 2)} ms vs fp32 {_fmt(row.fp32.latency_ms, 2)} "
                  f"ms (min/max int8 {_fmt(row.minmax.psnr, 1)} dB)  {row.int8.note}",
                  flush=True)
    section = models_markdown(rows, runs, time.perf_counter() - start)
    print(section)
    if write:
        write_section(write, section, MODELS_SECTION)
    return 0


@dataclass(frozen=True)
class FamilyPair:
    family: str
    task: str
    final_loss: float
    random: dict[str, Row]  # by target
    trained: dict[str, Row]


def measure_family_pair(name: str, size: int, steps: int, runs: int, work: Path) -> FamilyPair:
    import torch

    from benchmarks.trained_families import TASKS, train_family

    base = dict(configs(size, work))[f"{name} (inline)"]
    targets = (Target.FP32, Target.INT8)
    random = measure(f"{name} random", replace(base, out_dir=work / f"{name}_random",
                                                targets=targets), runs, timed=False)
    net, loss = train_family(name, steps)
    weights = work / f"{name}_trained.pt"
    torch.save(net.state_dict(), weights)
    out_dir = work / f"{name}_trained"
    trained = {r.target: r for r in measure(f"{name} trained", replace(
        base, out_dir=out_dir, targets=targets, weights=weights), runs, timed=False)}
    files = {t.value: out_dir / f"model_{t.file_suffix}.tflite" for t in targets}
    if all(path.is_file() for path in files.values()) and set(files) <= set(trained):
        latency = interleaved_latency_ms({k: p.read_bytes() for k, p in files.items()}, runs)
        trained = {k: replace(row, latency_ms=latency.get(k, row.latency_ms))
                   for k, row in trained.items()}
    return FamilyPair(name, TASKS[name].description, loss,
                      {r.target: r for r in random}, trained)


def trained_markdown(pairs: list[FamilyPair], size: int, steps: int, runs: int,
                     seconds: float) -> str:
    fp32, int8 = Target.FP32.value, Target.INT8.value
    lines = [
        TRAINED_SECTION, "",
        f"`python benchmarks/export_quality.py --trained-families --size {size} --steps {steps} "
        f"--runs {runs} --write docs/benchmarks.md` ({platform.machine()}, 2 cores shared with "
        f"other jobs; {seconds:.0f} s in all, training included). The inline families of "
        "tests/exporter/families.py, which no default of the exporter was tuned on, once with "
        f"their seeded random init and once trained {steps} Adam steps (L1, 64x64 crops of "
        "models/data.py's training photos) on the task in the table "
        "(benchmarks/trained_families.py); then `mobilize export`'s defaults at "
        f"{size}x{size} (ESPCN {size // 2}x{size // 2} in, x2 out). SNR: output variance over "
        "the error's mean square, the .tflite against PyTorch fp32 on the 8 held-out crops. "
        "Input cap: PyTorch fp32 on those inputs rounded to the int8 file's input grid - the "
        "best any int8-input file can reach; a random-init InstanceNorm net amplifies input "
        "noise so much that its cap sits near the 30 dB target. Latency: median of one "
        f"inference, 2 threads, {runs} runs, the fp32 and int8 files taking turns.",
        "",
        "| family | task | trained L1 | random int8 SNR dB | random input cap dB | "
        "trained int8 SNR dB | trained input cap dB | trained int8 PSNR dB | "
        "fp32 ms | int8 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    missing = Row("-", "-", None, None, None, None, 0.0, None)
    for pair in pairs:
        random, trained = pair.random.get(int8, missing), pair.trained.get(int8, missing)
        lines.append(
            f"| {pair.family} | {pair.task} | {pair.final_loss:.3f} | {_fmt(random.snr, 1)} | "
            f"{_fmt(random.cap_snr, 1)} | {_fmt(trained.snr, 1)} | {_fmt(trained.cap_snr, 1)} | "
            f"{_fmt(trained.psnr, 1)} | {_fmt(pair.trained.get(fp32, missing).latency_ms, 2)} | "
            f"{_fmt(trained.latency_ms, 2)} |")
    return "\n".join(lines) + "\n"


def run_trained_families(size: int, steps: int, runs: int, only: list[str],
                         write: Path | None) -> int:
    start = time.perf_counter()
    pairs = []
    with tempfile.TemporaryDirectory(prefix="export-quality-trained-") as work:
        for name in FAMILIES:
            if only and not any(o in name for o in only):
                continue
            print(f"{name}: random init, then {steps} training steps ...", flush=True)
            pair = measure_family_pair(name, size, steps, runs, Path(work))
            pairs.append(pair)
            for label, rows in (("random", pair.random), ("trained", pair.trained)):
                row = rows.get(Target.INT8.value)
                if row is not None:
                    print(f"  {label:8} int8 SNR {_fmt(row.snr, 1)} dB, input cap "
                          f"{_fmt(row.cap_snr, 1)} dB  {row.note}", flush=True)
    section = trained_markdown(pairs, size, steps, runs, time.perf_counter() - start)
    print(section)
    if write:
        write_section(write, section, TRAINED_SECTION)
    return 0


def _warm_runner(content: bytes) -> tuple[TfliteRunner, dict[str, np.ndarray]]:
    runner = TfliteRunner(content, num_threads=2)
    rng = np.random.default_rng(0)
    feeds = {name: rng.uniform(0, 1, tuple(detail["shape"])).astype(np.float32)
             for name, detail in runner.input_details.items()}
    for _ in range(3):
        runner(feeds)
    return runner, feeds


def median_latency_ms(content: bytes, runs: int) -> float:
    return interleaved_latency_ms({"model": content}, runs)["model"]


def interleaved_latency_ms(contents: dict[str, bytes], runs: int) -> dict[str, float]:
    """Median ms of one inference of each model, the models taking turns run by run."""
    runners = {key: _warm_runner(content) for key, content in contents.items()}
    samples: dict[str, list[float]] = {key: [] for key in contents}
    for _ in range(runs):
        for key, (runner, feeds) in runners.items():
            start = time.perf_counter()
            runner(feeds)
            samples[key].append((time.perf_counter() - start) * 1000)
    return {key: statistics.median(values) for key, values in samples.items()}


def measure(label: str, config: ExportConfig, runs: int, timed: bool = True) -> list[Row]:
    """Export, then one Row per target; timed=False leaves latency to the caller (who times
    several files in turns)."""
    start = time.perf_counter()
    try:
        result = run_export(config)
    except MobilizeError as error:
        return [Row(label, "all", None, None, None, None, time.perf_counter() - start, None,
                    f"failed: {error.message}")]
    shared = sum(result.stage_seconds.get(k, 0.0) for k in SHARED_STAGES)
    rows = []
    for target in result.targets:
        if not target.ok or target.verification is None:
            rows.append(Row(label, target.target.value, None, None, None, None,
                            shared + target.seconds, None, f"failed: {target.error}"))
            continue
        worst = min(target.verification.outputs, key=lambda o: o.psnr_db)
        latency = (median_latency_ms((result.out_dir / (target.file or "")).read_bytes(), runs)
                   if timed else None)
        integer = "" if not target.target.needs_calibration else (
            "full integer" if target.graph and target.graph.fully_integer else "float ops left")
        bound = target.verification.input_bound
        cap = min(o.snr_db for o in bound) if bound else None
        rows.append(Row(label, target.target.value, worst.psnr_db, worst.snr_db, worst.ssim,
                        (target.size_bytes or 0) / 1024, shared + target.seconds,
                        latency, integer, cap))
    return rows


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return "inf" if value == float("inf") else f"{value:.{digits}f}"


def markdown(rows: list[Row], size: int, runs: int, seconds: float) -> str:
    lines = [
        SECTION, "",
        f"`python benchmarks/export_quality.py --size {size} --runs {runs} --write "
        "docs/benchmarks.md` on this machine "
        f"({platform.machine()}, 2 cores shared with other jobs; {seconds:.0f} s in all). "
        "PSNR/SNR/SSIM: the .tflite in LiteRT's interpreter against PyTorch fp32 on 8 "
        "held-out crops of scikit-image photographs (chelsea, stereo_motorcycle, camera, "
        "coins) that calibration (32 crops of six other photos) never saw; PSNR over the "
        "output's declared range. The inline families are random-init test nets "
        f"(tests/exporter/families.py) at {size}x{size} (ESPCN: {size // 2}x{size // 2} in, x2 "
        "out), standing for architectures the exporter has never seen; the models.* rows are "
        "the trained generators of models/ at their own input size. Export s: shared stages "
        "(load, ONNX, clean, onnx2tf, data) plus this target's "
        "conversion and verification. Latency: median of one inference, 2 threads, "
        f"{runs} runs after 3 warm-ups. Default ONNX rewrites ({', '.join(DEFAULT_ONNX_PASSES)}) "
        "and int8 ranges (auto: a per-sample quantile chosen on a validation split of the "
        "calibration crops); the rows 'InstanceNorm not decomposed' keep onnx2tf's own "
        "InstanceNormalization for comparison. SNR: the output's variance over the error's "
        "mean square. Input cap SNR: PyTorch fp32 fed the held-out inputs rounded to the "
        "file's own integer input grid, against PyTorch fp32 - no file reading that input "
        "can do better.",
        "",
        "| model | target | PSNR dB | SNR dB | input cap SNR dB | SSIM | KiB | export s | "
        "median ms | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.family} | {r.target} | {_fmt(r.psnr, 1)} | {_fmt(r.snr, 1)} | "
            f"{_fmt(r.cap_snr, 1)} | "
            f"{_fmt(r.ssim, 3)} | {_fmt(r.kib, 1)} | {r.export_s:.1f} | "
            f"{_fmt(r.latency_ms, 2)} | {r.note.replace('|', '/')[:140]} |")
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str, heading: str = SECTION) -> None:
    """Replace this script's own section (from its heading to the next '## ') or append it."""
    text = path.read_text() if path.exists() else ""
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    temp = path.with_suffix(".md.tmp")
    temp.write_text(text)
    temp.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", action="append", default=[],
                        help="measure only models whose label contains this text")
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    parser.add_argument("--models", action="store_true",
                        help="only the trained models of models/: fp32 vs int8 (issue 7)")
    parser.add_argument("--trained-families", action="store_true",
                        help="the inline families random-init and briefly trained (issue 7)")
    parser.add_argument("--steps", type=int, default=300,
                        help="training steps per family for --trained-families")
    args = parser.parse_args()
    if args.models:
        return run_models(args.runs, args.write)
    if args.trained_families:
        return run_trained_families(args.size, args.steps, args.runs, args.only, args.write)
    start = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="export-quality-") as work:
        for label, config in configs(args.size, Path(work)):
            if args.only and not any(o in label for o in args.only):
                continue
            print(f"exporting {label} ...", flush=True)
            rows += measure(label, config, args.runs)
            for row in rows[-len(config.targets):]:
                print(f"  {row.target:15} PSNR {_fmt(row.psnr, 1):>6} dB  "
                      f"{_fmt(row.latency_ms, 2):>7} ms  {row.note}", flush=True)
    section = markdown(rows, args.size, args.runs, time.perf_counter() - start)
    print(section)
    if args.write:
        write_section(args.write, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
