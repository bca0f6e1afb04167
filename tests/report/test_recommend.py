"""The recommendation's rules on hand-made runs: what wins, and each reason to lose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mobilize.bench.config import Delegate
from mobilize.bench.model_input import ModelToBench
from mobilize.bench.quality import QualityError
from mobilize.bench.sweep import Candidate, LossReason, SweepRun, recommend, require_winner
from mobilize.device import ops

INFO = ops.DeviceInfo("SERIAL", "Pixel 7", "Google", "panther", "gs201", "arm64-v8a",
                      ("arm64-v8a",), 34, "14", "Mali-G710")


def model(target: str, size: int = 4096) -> ModelToBench:
    return ModelToBench(Path(f"/x/model_{target}.tflite"), f"x:tflite-{target}",
                        f"tflite-{target}", "0" * 64, size)


def record(delegate: str, p50_us: float, psnr: float | None = 50.0, status: str = "ok",
           applied: bool = True, message: str | None = None) -> dict[str, Any]:
    return {
        "result": {
            "status": status,
            "message": message,
            "latency": (
                {"samples": [p50_us * 0.9, p50_us, p50_us * 1.1]} if status == "ok" else None
            ),
            "memory": {"peak_rss": 51200.0, "pss": 30000.0},
            "delegate": {"requested": delegate, "applied": applied,
                         "name": delegate if applied else "xnnpack"},
        },
        "harness": {"quality": {"worst_psnr_db": psnr}} if status == "ok" else {},
    }


def candidate(target: str, delegate: Delegate, *records: dict[str, Any]) -> Candidate:
    return Candidate(model(target), delegate, tuple(records))


def test_fastest_qualifying_candidate_wins_and_each_other_says_why() -> None:
    sweep = SweepRun(INFO, candidates=[
        candidate("fp32", Delegate.CPU, record("cpu", 20000, psnr=None)),
        candidate("fp16", Delegate.GPU, record("gpu", 5000, psnr=44.0)),
        candidate("int8", Delegate.CPU, record("cpu", 4000, psnr=25.0)),
        candidate("int8", Delegate.NNAPI, record("nnapi", 6000, applied=False,
                                                 message="NNAPI took no node")),
        candidate("int16x8", Delegate.GPU, record("gpu", 0, status="model_load_failed",
                                                  message="unsupported op")),
    ])
    result = recommend(sweep, 30.0)
    assert result.winner is sweep.candidates[1]
    reasons = {v.candidate.label: (v.reason, v.detail) for v in result.verdicts}
    assert reasons["fp32 on cpu"] == (LossReason.SLOWER,
                                      "20.00 ms median, 4.00x the winner's median (5.00 ms)")
    assert reasons["int8 on cpu"] == (LossReason.WORSE_PICTURE, "worst PSNR 25.0 dB < 30 dB")
    assert reasons["int8 on nnapi"][0] is LossReason.FELL_BACK
    assert "ran on xnnpack (6.00 ms): NNAPI took no node" in reasons["int8 on nnapi"][1]
    assert reasons["int16x8 on gpu"] == (LossReason.FAILED_TO_LOAD,
                                         "model_load_failed: unsupported op")
    assert result.summary() == ("ship model_fp16.tflite (fp16) with the gpu delegate: 5.00 ms "
                                "median, 50.0 MB peak RSS, 4.0 KB file, worst PSNR 44.0 dB")


def test_int8_on_a_gpu_that_took_it_is_called_float_with_the_figures() -> None:
    sweep = SweepRun(INFO, candidates=[
        candidate("fp16", Delegate.GPU, record("gpu", 5000)),
        candidate("int8", Delegate.GPU, record("gpu", 5100)),
    ])
    result = recommend(sweep, 30.0)
    assert result.winner is sweep.candidates[0]
    (note,) = result.notes
    assert note.startswith("int8 on the GPU delegate runs in float")
    assert "measured: 5.10 ms vs fp16 on gpu 5.00 ms" in note


def test_no_candidate_left_is_an_error_naming_each_reason() -> None:
    sweep = SweepRun(INFO, candidates=[candidate("int8", Delegate.CPU, record("cpu", 4000,
                                                                              psnr=25.0))])
    result = recommend(sweep, 30.0)
    assert result.winner is None
    with pytest.raises(QualityError,
                       match=r"int8 on cpu: worse picture: worst PSNR 25.0 dB < 30 dB"):
        require_winner(result)
