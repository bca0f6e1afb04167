"""Bad input caught before the work (issue 16): an output folder that cannot be written and
calibration data that will be refused fail with exit 2 before any conversion; a re-used
output folder keeps nothing stale beside the new metadata.json."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mobilize.exporter.pipeline  # noqa: F401 - imported up front: timings below are ours
from mobilize.cli import main
from mobilize.contract.specs import ValueRange
from mobilize.errors import ExitCode, UsageError
from mobilize.exporter import preflight
from mobilize.exporter.config import CalibSource, ExportConfig, Target
from mobilize.exporter.pipeline import run_export

FAMILIES_FILE = Path(__file__).with_name("families.py")
ESPCN = f"{FAMILIES_FILE}:build_espcn"
ESPCN_ARGS = ["--input", "1x3x32x32", "--range", "0,1", "--input-name", "image",
              "--output-range", "0,1", "--calib-samples", "8", "--verify-samples", "2"]
# Well under onnx2tf's 10-16 s: the check has to come after stage 1 (it needs the inputs)
# and before stage 2.
PROMPT_S = 2.0


class Stages:
    def __init__(self) -> None:
        self.started: list[str] = []

    def stage_started(self, number: int, name: str) -> None:
        self.started.append(name)

    def stage_finished(self, number: int, name: str, seconds: float, detail: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


def _export(argv: list[str], capsys) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    code = main(["export", *argv])
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    return code, captured.out, captured.err, seconds


# ------------------------------------------------------------------ the output folder


def test_out_below_a_file_exits_2_before_any_stage(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file, not a folder")
    code, out, err, seconds = _export([ESPCN, *ESPCN_ARGS, "--target", "tflite-fp32",
                                       "--out", str(blocker / "export")], capsys)
    assert code == ExitCode.BAD_INPUT, err
    assert f"{blocker} is a file, not a folder" in " ".join(err.split())
    assert "[1/7]" not in out  # not even the model was loaded
    assert seconds < PROMPT_S
    assert blocker.read_text() == "a file, not a folder"


def test_out_that_is_a_file_or_a_dangling_symlink(tmp_path: Path) -> None:
    file = tmp_path / "out"
    file.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        preflight.check_out_dir(file)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(UsageError, match="dangling symlink"):
        preflight.check_out_dir(link / "deeper")
    preflight.check_out_dir(tmp_path / "new" / "nested")  # missing folders are fine
    assert not (tmp_path / "new").exists()  # and are not created by the check


def test_read_only_folder(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.geteuid() == 0:
            # root writes through permission bits (CAP_DAC_OVERRIDE): the folder *is*
            # writable for it, so the check rightly lets it through
            preflight.check_out_dir(folder / "export")
        else:
            with pytest.raises(UsageError, match="no permission to write"):
                preflight.check_out_dir(folder / "export")
    finally:
        folder.chmod(0o755)
    # what a normal user meets, shown whoever runs the test
    monkeypatch.setattr(preflight.os, "access", lambda path, mode: False)
    with pytest.raises(UsageError, match=f"no permission to write in {folder}"):
        preflight.check_out_dir(folder / "export")


def test_a_folder_that_refuses_writes_even_to_root(tmp_path: Path, monkeypatch) -> None:
    """A read-only mount or an immutable folder passes os.access; the write probe does not."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(preflight.tempfile, "mkstemp", read_only)
    with pytest.raises(UsageError, match="Read-only file system") as raised:
        preflight.check_out_dir(tmp_path / "export")
    assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ calibration data


def _config(tmp_path: Path, source: str) -> ExportConfig:
    return ExportConfig(
        model_ref=ESPCN, out_dir=tmp_path / "out", targets=(Target.INT8,),
        input_shapes=((1, 3, 32, 32),), input_ranges=(ValueRange(0.0, 1.0),),
        input_names=("image",), output_range=ValueRange(0.0, 1.0), calib_samples=8,
        verify_samples=2, calib_sources=(CalibSource.parse(source),))


def _png(path: Path, value: int = 100) -> Path:
    Image.fromarray(np.full((40, 48, 3), value, dtype=np.uint8)).save(path)
    return path


def _bad_source(kind: str, tmp_path: Path) -> str:
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "empty_folder":
        (folder / "readme.txt").write_text("no images here")
        return str(folder)
    if kind == "broken_png":
        _png(folder / "good.png")
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        return str(folder)
    if kind == "cut_jpeg":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), np.uint8)
                        ).save(folder / "photo.jpg", quality=95)
        data = (folder / "photo.jpg").read_bytes()
        (folder / "photo.jpg").write_bytes(data[: len(data) // 2])
        return str(folder)
    if kind == "nhwc_array":
        np.save(folder / "samples.npy", np.zeros((12, 32, 32, 3), np.float32))
        return str(folder / "samples.npy")
    if kind == "range_0_255":
        np.save(folder / "samples.npy",
                np.random.default_rng(0).uniform(0, 255, (12, 3, 32, 32)).astype(np.float32))
        return str(folder / "samples.npy")
    if kind == "text_as_npy":
        (folder / "samples.npy").write_text("1,2,3\n")
        return str(folder / "samples.npy")
    if kind == "wrong_suffix":
        (folder / "samples.csv").write_text("1,2,3\n")
        return str(folder / "samples.csv")
    if kind == "missing":
        return str(folder / "nothing-here")
    if kind == "unknown_input":
        _png(folder / "a.png")
        return f"content={folder}"
    raise AssertionError(kind)


REFUSALS = {
    "empty_folder": "holds no png/jpg image",
    "broken_png": "cannot read image",
    "cut_jpeg": "cannot read image",
    "nhwc_array": "it looks NHWC",
    "range_0_255": "far outside input 'image'",
    "text_as_npy": "cannot read",
    "wrong_suffix": "cannot use",
    "missing": "does not exist",
    "unknown_input": "names input 'content'",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_calibration_data_is_refused_before_onnx2tf(kind: str, tmp_path: Path) -> None:
    stages = Stages()
    config = _config(tmp_path, _bad_source(kind, tmp_path))
    start = time.perf_counter()
    with pytest.raises(UsageError, match=REFUSALS[kind]):
        run_export(config, stages)
    seconds = time.perf_counter() - start
    assert stages.started == ["load model"], stages.started  # no ONNX, no onnx2tf
    assert seconds < PROMPT_S, f"{kind}: refused after {seconds:.2f} s"
    assert not config.out_dir.exists()


def test_refused_calibration_exits_2_from_the_command_line(tmp_path: Path, capsys) -> None:
    source = _bad_source("nhwc_array", tmp_path)
    code, out, err, seconds = _export([ESPCN, *ESPCN_ARGS, "--target", "tflite-int8",
                                       "--calib-dir", source, "--out", str(tmp_path / "o")],
                                      capsys)
    assert code == ExitCode.BAD_INPUT, err
    assert "NHWC" in err and "[2/7]" not in out
    assert seconds < PROMPT_S


def test_good_sources_pass_the_check(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(3):
        _png(folder / f"{index}.png", 40 * index + 20)
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(folder / "3.jpg")
    from mobilize.exporter.calibration import check_sources
    from mobilize.exporter.model_loader import load_model

    loaded = load_model(ESPCN, input_shapes=((1, 3, 32, 32),),
                        input_ranges=(ValueRange(0.0, 1.0),), input_names=("image",))
    check_sources(loaded.inputs, (CalibSource.parse(str(folder)),), 8, 2)
    arrays = tmp_path / "samples.npy"
    np.save(arrays, np.random.default_rng(0).uniform(0, 1, (12, 3, 32, 32)).astype(np.float32))
    check_sources(loaded.inputs, (CalibSource.parse(str(arrays)),), 8, 2)


# ------------------------------------------------------------------ a re-used output folder


def _write(path: Path, content: str = "x") -> Path:
    path.write_text(content)
    return path


def test_stale_files_of_an_earlier_export_go_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    outside = _write(tmp_path / "outside.txt", "keep me")
    old = {"onnx": {"file": "model.onnx"}, "artifacts": [
        {"target": "tflite-fp32", "file": "model_fp32.tflite", "strip": "verify_fp32.png"},
        {"target": "tflite-int16x8", "file": "model_int16x8.tflite",
         "strip": "verify_int16x8.png"},
        {"target": "tflite-int8", "file": "../outside.txt", "strip": "/etc/hostname"}],
        "finetune": {"file": "finetuned.pt"}}
    _write(out / "metadata.json", json.dumps(old))
    for name in ("model.onnx", "model_fp32.tflite", "verify_fp32.png", "model_int16x8.tflite",
                 "verify_int16x8.png", "finetuned.pt",
                 "model_fp16.tflite",  # our name, unlisted: left by a crash mid-write
                 ".model_int8.tflite.abc123.tmp",  # a temp file of a killed write
                 "notes.txt", "model_custom.tflite", "verify_by_hand.png"):  # the user's
        _write(out / name)
    (out / "model_dynamic.tflite").symlink_to(outside)  # our name, but a link: left alone
    (out / "photos").mkdir()
    new = {"onnx": {"file": "model.onnx"}, "artifacts": [
        {"target": "tflite-fp32", "file": "model_fp32.tflite", "strip": "verify_fp32.png"}]}
    expected_gone = {"model_int16x8.tflite", "verify_int16x8.png", "finetuned.pt",
                     "model_fp16.tflite", ".model_int8.tflite.abc123.tmp"}
    assert {p.name for p in preflight.stale_files(out, new)} == expected_gone
    preflight.replace_metadata(out, new)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["metadata.json", "model.onnx", "model_fp32.tflite", "verify_fp32.png", "notes.txt",
         "model_custom.tflite", "verify_by_hand.png", "model_dynamic.tflite", "photos"])
    assert json.loads((out / "metadata.json").read_text())["artifacts"][0]["target"] \
        == "tflite-fp32"
    assert outside.read_text() == "keep me"


def test_an_unreadable_old_metadata_lists_nothing(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    _write(out / "metadata.json", "{not json")
    _write(out / "summary.png")
    _write(out / "verify_int8.png")
    preflight.replace_metadata(out, {"artifacts": []})
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "summary.png"]


@pytest.mark.slow
def test_a_reused_out_folder_keeps_nothing_stale(tmp_path: Path, capsys) -> None:
    """A real export into the folder of an earlier one with other targets."""
    out = tmp_path / "out"
    out.mkdir()
    _write(out / "metadata.json", json.dumps({"artifacts": [
        {"target": "tflite-int16x8", "file": "model_int16x8.tflite",
         "strip": "verify_int16x8.png"}]}))
    for name in ("model_int16x8.tflite", "verify_int16x8.png", "my_notes.md"):
        _write(out / name)
    code, _, err, _ = _export([ESPCN, *ESPCN_ARGS, "--target", "tflite-fp32",
                               "--out", str(out)], capsys)
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["metadata.json", "model.onnx", "model_fp32.tflite", "my_notes.md",
                     "verify_fp32.png"]
    metadata = json.loads((out / "metadata.json").read_text())
    assert [a["file"] for a in metadata["artifacts"]] == ["model_fp32.tflite"]
