"""`mobilize bench --check-quality` on the emulated device: figures kept with the run, and
--min-psnr failing the command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mobilize.cli import main
from mobilize.results.store import get_run, open_store
from tests.report.conftest import device_args

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

FAST = ["--runs", "5", "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5"]


def bench(capsys, model: Path, emu, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["bench", str(model), *FAST, *device_args(emu, tmp_path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_quality_keeps_the_figures_with_the_run(capsys, tiny_export, emu,
                                                      tmp_path) -> None:
    code, out, err = bench(capsys, tiny_export, emu, tmp_path, "--target", "tflite-int8",
                           "--check-quality", "--min-psnr", "30")
    assert code == 0, err
    assert f"quality: {tiny_export.name}:tflite-int8 on cpu: worst PSNR" in err
    with open_store(tmp_path / "results.db") as connection:
        run = get_run(connection, "1")
    assert run is not None
    quality = run.harness["quality"]
    assert 35 < quality["worst_psnr_db"] < 90  # int8 rounding, measured on the phone
    assert quality["mean_ssim"] > 0.95 and len(quality["images"]) == 3


def test_a_tflite_inside_an_export_folder_is_checked_too(capsys, tiny_export, emu,
                                                         tmp_path) -> None:
    code, _, err = bench(capsys, tiny_export / "model_fp16.tflite", emu, tmp_path,
                         "--check-quality")
    assert code == 0, err
    assert "worst PSNR" in err


def test_min_psnr_above_what_the_phone_draws_fails_the_bench(capsys, tiny_export, emu,
                                                              tmp_path) -> None:
    code, _, err = bench(capsys, tiny_export, emu, tmp_path, "--target", "tflite-int8",
                         "--check-quality", "--min-psnr", "500")
    assert code == 6
    assert "fell below --min-psnr 500 dB" in err
    assert "tflite-int8 on cpu: worst PSNR" in err


def test_a_bare_tflite_has_no_reference_to_compare_with(capsys, tiny_export, emu,
                                                        tmp_path) -> None:
    bare = tmp_path / "bare.tflite"
    shutil.copy(tiny_export / "model_fp32.tflite", bare)
    code, _, err = bench(capsys, bare, emu, tmp_path, "--check-quality")
    assert code == 2
    assert "needs the PyTorch model" in err


def test_min_psnr_without_check_quality_is_a_usage_error(capsys, tiny_export, emu,
                                                         tmp_path) -> None:
    code, _, err = bench(capsys, tiny_export, emu, tmp_path, "--min-psnr", "30")
    assert code == 2
    assert "--min-psnr and --quality-images need --check-quality" in err


def test_benchmark_model_runner_cannot_check_quality(capsys, tiny_export, emu, tmp_path) -> None:
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    code, _, err = bench(capsys, tiny_export, emu, tmp_path, "--check-quality", "--runner",
                         "benchmark-model", "--binary", str(binary))
    assert code == 2
    assert "benchmark_model writes no outputs" in err
