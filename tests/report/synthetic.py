"""A sweep's records made by hand, at a real sweep's scale: five variants x three delegates
(fifteen series), two rounds of fifty samples, 256 px previews of real photographs, GPU and
NNAPI falling back with one runtime message each, one int16x8 twenty times slower."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from mobilize.bench.config import Delegate
from mobilize.bench.model_input import ModelToBench
from mobilize.bench.quality_images import heatmap, png_base64
from mobilize.bench.sweep import Candidate, Recommendation, SweepRun, recommend
from mobilize.device import ops

INFO = ops.DeviceInfo("R5CT1234", "Pixel 7", "Google", "panther", "gs201", "arm64-v8a",
                      ("arm64-v8a",), 34, "14", "Mali-G710")
VARIANTS = {"fp32": 42.0, "fp16": 40.0, "dynamic": 55.0, "int8": 21.0, "int16x8": 840.0}
DELEGATES = (Delegate.CPU, Delegate.GPU, Delegate.NNAPI)
FALLBACK = {
    Delegate.GPU: "GPU delegate refused the graph: no OpenCL; this run used the CPU (XNNPACK)",
    Delegate.NNAPI: "NNAPI took no node of the graph; this run used the CPU (XNNPACK)",
}


def _photos(side: int = 256) -> list[np.ndarray]:
    from PIL import Image
    from skimage import data

    return [np.asarray(Image.fromarray(photo).resize((side, side)), dtype=np.float32)
            .transpose(2, 0, 1) / 255.0 for photo in (data.chelsea(), data.rocket())]


def _previews(noise: float, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    shown = []
    for photo in _photos():
        output = np.clip(photo + rng.normal(0, noise, photo.shape).astype(np.float32), 0, 1)
        shown.append({"input": png_base64(photo), "reference": png_base64(photo),
                      "output": png_base64(output),
                      "difference": png_base64(heatmap(np.abs(output - photo) * 10))})
    return shown


def record(variant: str, delegate: Delegate, round_index: int, previews: list[dict[str, str]],
           psnr: float) -> dict[str, Any]:
    rng = random.Random(f"{variant}{delegate.value}{round_index}")
    median_ms = VARIANTS[variant]
    samples = [median_ms * 1000.0 * rng.uniform(0.95, 1.08) for _ in range(50)]
    applied = delegate is Delegate.CPU
    run_id = f"20261201T1200{round_index}0-{variant}-{delegate.value}"
    result = {
        "run_id": run_id, "status": "ok", "runner": "app",
        "message": None if applied else FALLBACK[delegate],
        "config": {"delegate": delegate.value, "threads": 4, "warmup_runs": 5, "num_runs": 50,
                   "gpu_precision": "fp16"},
        "delegate": {"requested": delegate.value, "applied": applied, "name": "xnnpack",
                     "nodes_delegated": 60 if applied else 0, "nodes_total": 64,
                     "partitions": 1 if applied else 0,
                     "fallback_ops": ["MEAN", "RSQRT", "CONV_2D", "ADD", "MUL", "SUB", "RELU",
                                      "TANH"] if not applied else []},
        "latency": {"unit": "us", "init": 1_580_040.0, "first_inference": median_ms * 1800.0,
                    "samples": samples, "warmup": samples[:5]},
        "memory": {"unit": "kB", "peak_rss": 180_000.0 + 1000 * len(variant), "pss": 120_000.0},
        "model": {"size_bytes": 1_700_000 // (4 if variant == "int8" else 1)},
        "device": INFO.as_schema_dict(),
        "runtime": {"name": "litert", "version": "1.4.1", "app_version": "0.1.0"},
        "thermal": {"before": "none", "after": "light" if round_index else "none"},
    }
    quality = {"source": "image: skimage.data photographs (chelsea, rocket)", "count": 2,
               "worst_psnr_db": psnr, "pooled_psnr_db": psnr + 3.5, "mean_ssim": 0.97,
               "max_abs_error": 0.08,
               "images": [{"file": "q000.npy", "psnr_db": psnr, "ssim": 0.97,
                           "max_abs_error": 0.08},
                          {"file": "q001.npy", "psnr_db": psnr + 6, "ssim": 0.98,
                           "max_abs_error": 0.05}],
               "previews": previews}
    return {"serial": INFO.serial, "created_at": f"2026-12-01T12:0{round_index}:00+00:00",
            "model_name": f"fast_style:tflite-{variant}",
            "model_path": f"/nowhere/fast_style/model_{variant}.tflite",
            "target": f"tflite-{variant}", "result": result,
            "harness": {"quality": quality if round_index == 0 else None,
                        "thermal_after": result["thermal"]["after"], "warnings": [],
                        "device_info": {"serial": INFO.serial, **INFO.as_schema_dict()}}}


def sweep_records(min_psnr: float = 30.0) -> tuple[list[dict[str, Any]], Recommendation]:
    """Every record in run order (rounds interleaved) and the sweep's recommendation."""
    psnrs = {"fp32": 62.0, "fp16": 55.0, "dynamic": 41.0, "int8": 28.0, "int16x8": 47.0}
    previews = {(v, d): _previews(0.002 + max(0.0, 64 - psnrs[v]) / 400, seed=i)
                for i, (v, d) in enumerate((v, d) for v in VARIANTS for d in DELEGATES)}
    records = [record(v, d, r, previews[(v, d)], psnrs[v])
               for r in range(2) for v in VARIANTS for d in DELEGATES]
    candidates = [
        Candidate(ModelToBench(Path(f"/nowhere/fast_style/model_{v}.tflite"),
                               f"fast_style:tflite-{v}", f"tflite-{v}", "0" * 64,
                               1_700_000 // (4 if v == "int8" else 1)),
                  d, tuple(r for r in records if r["target"] == f"tflite-{v}"
                           and r["result"]["config"]["delegate"] == d.value))
        for v in VARIANTS for d in DELEGATES
    ]
    sweep = SweepRun(INFO, candidates=candidates, records=records)
    return records, recommend(sweep, min_psnr)
