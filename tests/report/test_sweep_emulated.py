"""`mobilize sweep` and `mobilize report` end to end against the emulated device.

The real exporter made the variants, the real adb-shell TCP transport drives the emulated
phone, whose app runs each .tflite with the real TFLite interpreter and writes the quality
outputs; the emulated phone has no GPU/NNAPI delegate, so those runs fall back to the CPU.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from mobilize.bench import app_contract
from mobilize.cli import main
from mobilize.results.store import get_run, open_store
from tests.report.conftest import device_args

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

FAST = ["--runs", "6", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
        "--quality-samples", "2"]


def sweep(capsys, tiny_export: Path, emu, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    report = tmp_path / "sweep.html"
    code = main(["sweep", str(tiny_export), "--delegates", "cpu,gpu,nnapi", "--report",
                 str(report), *FAST, *device_args(emu, tmp_path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sweep_recommends_a_cpu_variant_and_says_why_the_others_lost(
        capsys, tiny_export, emu, tmp_path) -> None:
    code, out, err = sweep(capsys, tiny_export, emu, tmp_path, "--repeat", "2")
    assert code == 0, err
    winner = re.search(
        r"recommendation: ship (model_\w+\.tflite) \((\w+)\) with the (\w+) delegate", out)
    assert winner is not None, out
    assert winner.group(3) == "cpu"  # gpu/nnapi fell back: they can never be recommended
    assert out.count("delegate fell back to CPU") == 6  # 3 variants x (gpu, nnapi)
    assert "int8 on the GPU delegate runs in float" in out
    assert "PSNR" in out and "peak RSS" in out and "KB file" in out
    # every run saved, interleaved, with the quality figures in the run's stored record
    with sqlite3.connect(tmp_path / "results.db") as connection:
        rows = connection.execute("SELECT model_name, delegate FROM runs ORDER BY id").fetchall()
    assert len(rows) == 18  # 3 variants x 3 delegates x 2 rounds
    assert rows[:3] == [(f"{tiny_export.name}:tflite-fp32", d) for d in ("cpu", "gpu", "nnapi")]
    assert rows[9] == rows[0]  # the second round starts over: A B C ... A B C
    with open_store(tmp_path / "results.db") as connection:
        first = get_run(connection, "1")
    assert first is not None
    quality = first.harness["quality"]
    assert quality["count"] == 2 and len(quality["images"]) == 2
    assert quality["worst_psnr_db"] > 60  # fp32 on the phone draws what PyTorch draws
    assert len(quality["previews"]) == 2
    # nothing left behind on the device
    work = Path(emu.root) / app_contract.REMOTE_WORK_DIR.lstrip("/")
    assert not work.exists() or not list(work.iterdir())
    html = (tmp_path / "sweep.html").read_text()
    assert html.count("<svg") >= 3  # latency boxes, timeline, memory bars
    # two strips: input, PyTorch, then 9 candidates x (phone output, difference heatmap)
    assert html.count("data:image/png;base64,") == 2 * (2 + 9 * 2)
    assert "delegate fell back to CPU" in html and "Recommendation" in html


def test_int8_loses_on_picture_when_the_threshold_is_above_it(capsys, tiny_export, emu,
                                                               tmp_path) -> None:
    code, out, err = sweep(capsys, tiny_export, emu, tmp_path, "--min-psnr", "80",
                           "--delegates", "cpu")
    assert code == 0, err
    assert "with the cpu delegate" in out and "(int8)" not in out.split("recommendation:")[1]
    assert re.search(r"worse picture: worst PSNR \d+\.\d dB < 80 dB", out)


def test_min_psnr_nobody_reaches_fails_with_a_clear_message(capsys, tiny_export, emu,
                                                             tmp_path) -> None:
    code, out, err = sweep(capsys, tiny_export, emu, tmp_path, "--min-psnr", "500",
                           "--delegates", "cpu")
    assert code == 6
    assert "no variant qualifies at --min-psnr 500 dB" in err
    assert "worse picture" in err and "what to do:" in err
    assert (tmp_path / "sweep.html").is_file()  # the evidence is written all the same


def test_report_from_stored_run_ids(capsys, tiny_export, emu, tmp_path) -> None:
    code, _, err = sweep(capsys, tiny_export, emu, tmp_path, "--delegates", "cpu", "--repeat",
                         "1")
    assert code == 0, err
    with sqlite3.connect(tmp_path / "results.db") as connection:
        run_ids = [r for (r,) in connection.execute("SELECT run_id FROM runs ORDER BY id")]
    out_file = tmp_path / "report.html"
    code = main(["report", *run_ids, "--db", str(tmp_path / "results.db"), "--out",
                 str(out_file)])
    assert code == 0, capsys.readouterr().err
    html = out_file.read_text()
    assert all(run_id in html for run_id in run_ids)
    assert html.count("<svg") >= 3 and "PyTorch fp32" in html
    assert "fp32 / cpu" in html and "int8 / cpu" in html


def test_report_of_an_unknown_run_is_a_usage_error(capsys, tmp_path) -> None:
    db = tmp_path / "results.db"
    with open_store(db):
        pass
    code = main(["report", "nope", "--db", str(db), "--out", str(tmp_path / "r.html")])
    assert code == 2
    assert "no stored run 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_unknown_delegate_is_a_usage_error(capsys, tiny_export, tmp_path) -> None:
    code = main(["sweep", str(tiny_export), "--delegates", "cpu,tpu"])
    assert code == 2
    assert "unknown tpu" in capsys.readouterr().err


def test_models_that_fail_to_load_lose_with_that_reason(capsys, tiny_export, emu,
                                                         tmp_path) -> None:
    emu.faults.model_load_fails = True
    code, out, err = sweep(capsys, tiny_export, emu, tmp_path, "--delegates", "cpu",
                           "--repeat", "1")
    assert code == 6
    assert err.count("failed to load: model_load_failed: could not load the model") == 3
    html = (tmp_path / "sweep.html").read_text()
    assert "failed to load" in html and "model_load_failed" in html
