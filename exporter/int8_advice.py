"""When tflite-int8 keeps under ADVICE_SNR_DB of the picture, the other targets measured on
this very model in the same run: SNR against PyTorch on the same held-out photos and the
median CPU latency here. The export's advice quotes these figures, never figures measured
on other models (issue 15: a warning that promised "34-49 dB" for int16x8 was wrong by
35 dB on an AdaIN net nobody here had trained).

A target the export already made is reused; the others are converted from the graph their
passes give (a second onnx2tf run only where that graph differs) and are not written out.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mobilize.exporter.config import ExportConfig, Target

if TYPE_CHECKING:  # the pipeline imports this module
    from mobilize.exporter.pipeline import ProgressListener, TargetResult

ALTERNATIVES_FOLDER = "alternatives"  # inside the export's work folder

ADVICE_SNR_DB = 30.0
ALTERNATIVES = (Target.DYNAMIC, Target.FP16, Target.INT16X8)
LATENCY_RUNS = 5
LATENCY_BUDGET_S = 3.0  # after one warm-up run; an int16x8 frame can take seconds on a CPU
LATENCY_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Option:
    """One target as measured on the user's model in this run."""

    target: Target
    snr_db: float | None = None  # worst output, against PyTorch fp32
    worst_psnr_db: float | None = None
    cpu_ms: float | None = None  # median of up to LATENCY_RUNS runs on this machine
    size_bytes: int | None = None
    error: str | None = None  # the target failed to convert or run

    def to_json(self) -> dict[str, Any]:
        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {"target": self.target.value, "snr_db": rounded(self.snr_db, 2),
                "worst_image_psnr_db": rounded(self.worst_psnr_db, 2),
                "cpu_ms": rounded(self.cpu_ms, 3), "size_bytes": self.size_bytes,
                "error": self.error}


def cpu_latency_ms(content: bytes, threads: int = LATENCY_THREADS,
                   runs: int = LATENCY_RUNS, budget_s: float = LATENCY_BUDGET_S) -> float:
    """Median wall time of one invoke on zero inputs (the kernels' time does not depend on
    the pixels), after a warm-up; stops early past budget_s."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (not times or time.perf_counter() < deadline):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def needs_advice(snr_db: float) -> bool:
    return snr_db < ADVICE_SNR_DB


def _figures(option: Option) -> str:
    name = f"    {option.target.value:<15}"
    if option.error is not None:
        return f"{name} failed: {option.error.splitlines()[0][:60]}"
    return (f"{name} {option.snr_db:5.1f} dB  {_ms(option.cpu_ms):>9}  "
            f"{(option.size_bytes or 0) / 1024:6.0f} KiB")


def _ms(value: float | None) -> str:
    if value is None:
        return "? ms"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.3g} ms"


def advice(options: Sequence[Option], means: int, rsqrts: int,
           finetune_steps: int = 0) -> str:
    """The warning on a tflite-int8 file under ADVICE_SNR_DB, with this model's figures."""
    int8 = options[0]
    why = (f": the net normalizes each image by its own statistics ({means} MEAN, {rsqrts} "
           "RSQRT ops: InstanceNorm or AdaIN), and one int8 scale per tensor rounds away "
           "each image's small spreads" if means and rsqrts else "")
    head = (f"{int8.target.value} keeps {int8.snr_db:.1f} dB SNR against PyTorch, under "
            f"{ADVICE_SNR_DB:g} dB{why}")
    if finetune_steps:
        return (f"{head}, after --finetune {finetune_steps}. The other targets were not "
                "measured, since they would come from the fine-tuned weights: export them "
                "without --finetune to compare on this model")
    working = [o for o in options[1:] if o.error is None]
    better = sorted((o for o in working if (o.snr_db or 0) >= ADVICE_SNR_DB),
                    key=lambda o: o.cpu_ms or float("inf"))
    pick = (f"fastest at or above {ADVICE_SNR_DB:g} dB: --target {better[0].target.value}"
            if better else f"none of them reaches {ADVICE_SNR_DB:g} dB on this model")
    threads = f"{LATENCY_THREADS} thread{'s' if LATENCY_THREADS > 1 else ''}"
    return "\n".join([
        f"{head}. Measured on this model in this run (SNR on the held-out photos, median CPU "
        f"latency here with {threads}):",
        *(_figures(option) for option in options),
        f"  {pick[0].upper()}{pick[1:]}; or --finetune 200 to tune the int8 weights to its "
        "rounding; --debug-quant names the layers that lose most. A phone ranks them its own "
        "way: `mobilize bench` them there"])


def advise_int8(config: ExportConfig, results: list[TargetResult],
                convert_missing: Callable[[list[Target], Path], dict[Target, TargetResult]],
                work: Path, progress: ProgressListener) -> list[TargetResult]:
    """A tflite-int8 result under ADVICE_SNR_DB gets the warning with this model's figures
    (`convert_missing` makes the targets the export was not asked for, into a folder)."""
    index = next((i for i, r in enumerate(results) if r.target is Target.INT8 and r.ok), None)
    if index is None:
        return results
    int8 = results[index]
    assert int8.verification is not None and int8.graph is not None
    if not needs_advice(int8.verification.worst_snr_db):
        return results
    start = time.perf_counter()
    made = {r.target: r for r in results}
    missing = [t for t in ALTERNATIVES if t not in made]
    measuring = config.int8_alternatives and not config.finetune_steps
    if measuring and missing:
        made.update(convert_missing(missing, work / ALTERNATIVES_FOLDER))
    options = tuple(_option(made[target], work if target in config.targets
                            else work / ALTERNATIVES_FOLDER)
                    for target in (Target.INT8, *ALTERNATIVES)
                    if target is Target.INT8 or (measuring and target in made))
    histogram = int8.graph.op_histogram
    text = advice(options, histogram.get("MEAN", 0), histogram.get("RSQRT", 0),
                  config.finetune_steps)
    if len(options) > 1:
        progress.stage_finished(6, "  int8 alternatives", time.perf_counter() - start,
                                "; ".join(f"{o.target.file_suffix} "
                                          f"{'failed' if o.error else f'{o.snr_db:.1f} dB'}"
                                          for o in options))
    results = list(results)
    results[index] = replace(int8, warnings=(*int8.warnings, text), alternatives=options)
    return results


def _option(result: TargetResult, work: Path) -> Option:
    if not result.ok or result.verification is None or result.file is None:
        return Option(result.target, error=result.error or "not converted")
    content = (work / "out" / result.file).read_bytes()
    return Option(result.target, result.verification.worst_snr_db,
                  result.verification.worst_psnr_db, cpu_latency_ms(content), len(content))
