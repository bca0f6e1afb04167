"""`mobilize export` from the command line: clear errors with exit 2, the quality gate, I/O
types, serialized models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mobilize.cli import main
from mobilize.errors import ExitCode, UsageError
from mobilize.exporter.model_loader import load_model
from tests.exporter.families import FAMILIES, Espcn

FAMILIES_FILE = Path(__file__).with_name("families.py")
ESPCN = f"{FAMILIES_FILE}:build_espcn"
ESPCN_ARGS = ["--input", "1x3x32x32", "--range", "0,1", "--input-name", "image",
              "--output-range", "0,1", "--calib-samples", "8", "--verify-samples", "2"]


def _export(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["export", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bad_module_path_exits_2_with_a_hint(tmp_path, capsys):
    code, _, err = _export(["no_such_pkg.models:build", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "cannot import 'no_such_pkg.models'" in err and "what to do:" in err
    assert "Traceback" not in err


def test_missing_file_and_missing_factory_exit_2(tmp_path, capsys):
    code, _, err = _export([f"{tmp_path}/nope.py:build", "--out", str(tmp_path)], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = _export([f"{FAMILIES_FILE}:build_gan", "--out", str(tmp_path)], capsys)
    assert code == 2 and "has no factory 'build_gan'" in err and "build_espcn" in err


def test_weights_that_do_not_fit_exit_2(tmp_path, capsys):
    weights = tmp_path / "wide.pt"
    torch.save(Espcn(width=32).state_dict(), weights)
    code, _, err = _export([ESPCN, *ESPCN_ARGS, "--weights", str(weights),
                            "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert "do not fit the model" in err and "wrong shape" in err
    assert "body.0.weight (32, 3, 5, 5) vs (16, 3, 5, 5)" in err
    assert not (tmp_path / "out").exists()


def test_weights_that_fit_are_loaded(tmp_path):
    model = Espcn()
    torch.nn.init.constant_(model.body[0].bias, 0.25)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "w.pt")
    loaded = load_model(ESPCN, weights=tmp_path / "w.pt", input_shapes=[(1, 3, 8, 8)])
    assert torch.all(loaded.module.body[0].bias == 0.25)


def test_shape_mismatch_exits_2(tmp_path, capsys):
    unet = f"{FAMILIES_FILE}:build_unet"
    code, _, err = _export([unet, "--input", "1x3x36x36", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "does not accept inputs input 1x3x36x36" in err
    code, _, err = _export([unet, "--input", "1x4x64x64", "--out", str(tmp_path)], capsys)
    assert code == 2 and "does not accept inputs" in err


def test_two_input_model_needs_two_shapes(tmp_path, capsys):
    adain = f"{FAMILIES_FILE}:build_adain"
    code, _, err = _export([adain, "--input", "1x3x32x32", "--out", str(tmp_path)], capsys)
    assert code == 2 and "does not accept inputs" in err


def test_model_without_inputs_needs_input_flag(capsys, tmp_path):
    code, _, err = _export([ESPCN, "--out", str(tmp_path)], capsys)
    assert code == 2 and "declares no INPUTS" in err and "--input" in err


def test_bad_shape_and_range_text_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["export", ESPCN, "--input", "1x3xbig"])
    assert exited.value.code == 2
    assert "cannot read input shape" in capsys.readouterr().err


def test_state_dict_given_as_model_is_explained(tmp_path, capsys):
    torch.save(Espcn().state_dict(), tmp_path / "weights.pt")
    code, _, err = _export([str(tmp_path / "weights.pt"), "--input", "1x3x8x8"], capsys)
    assert code == 2 and "--weights" in err


def test_exported_program_and_torchscript_files_load(tmp_path):
    model = FAMILIES["espcn"].build()
    example = (torch.rand(1, 3, 16, 16),)
    torch.export.save(torch.export.export(model, example), tmp_path / "espcn.pt2")
    torch.jit.save(torch.jit.trace(model, example), tmp_path / "espcn.pt")
    for name, kind in (("espcn.pt2", "exported_program"), ("espcn.pt", "torchscript")):
        loaded = load_model(str(tmp_path / name), input_shapes=[(1, 3, 16, 16)])
        assert loaded.kind == kind
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(*example), model(*example))


def test_range_parse_errors_are_usage_errors():
    with pytest.raises(UsageError):
        load_model(ESPCN, input_shapes=[(1, 3, 8, 8)], input_ranges=[], input_names=["a", "b"])


@pytest.mark.slow
def test_uint8_io_and_min_psnr_gate(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _export([ESPCN, *ESPCN_ARGS, "--target", "tflite-int8", "--io", "uint8",
                                 "--min-psnr", "99", "--out", str(out)], capsys)
    assert code == ExitCode.QUALITY_GATE == 6, err
    assert "PSNR below --min-psnr 99 dB: tflite-int8" in err
    assert "[1/7] load model" in stdout and "[4/7] onnx2tf" in stdout
    assert "tflite-int8" in stdout and "PSNR" in stdout  # the comparison table
    metadata = json.loads((out / "metadata.json").read_text())  # written even so
    artifact = metadata["artifacts"][0]
    assert artifact["io"] == "uint8"
    assert {t["dtype"] for t in artifact["inputs"] + artifact["outputs"]} == {"uint8"}
    assert artifact["graph"]["fully_integer"]
    assert metadata["min_psnr_db"] == 99
    verification = artifact["verification"]
    psnr = verification["worst_image_psnr_db"]  # what --min-psnr gates on
    assert verification["gate"] == "worst_image_psnr_db"
    assert psnr == min(verification["outputs"][0]["image_psnr_db"]) <= verification["psnr_db"]
    assert "worst" in stdout and "pooled" in stdout  # both named in the table's header
    code, _, _ = _export([ESPCN, *ESPCN_ARGS, "--target", "tflite-int8", "--io", "uint8",
                          "--min-psnr", f"{psnr - 1:.1f}", "--out", str(out)], capsys)
    assert code == 0


@pytest.mark.slow
def test_torchscript_file_to_int8_with_float_io(tmp_path, capsys):
    model = FAMILIES["espcn"].build()
    torch.jit.save(torch.jit.trace(model, (torch.rand(1, 3, 32, 32),)), tmp_path / "m.pt")
    out = tmp_path / "out"
    code, _, err = _export([str(tmp_path / "m.pt"), *ESPCN_ARGS, "--target", "tflite-int8",
                            "--target", "tflite-fp32", "--io", "float", "--out", str(out)],
                           capsys)
    assert code == 0, err
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["source_model"]["kind"] == "torchscript"
    int8 = next(a for a in metadata["artifacts"] if a["target"] == "tflite-int8")
    assert {t["dtype"] for t in int8["inputs"] + int8["outputs"]} == {"float32"}
    # float I/O: only the boundary QUANTIZE/DEQUANTIZE are float, the body is integer
    assert int8["graph"]["fully_integer"], int8["graph"]["float_ops"]
    assert int8["graph"]["op_histogram"]["QUANTIZE"] >= 1
    fp32 = next(a for a in metadata["artifacts"] if a["target"] == "tflite-fp32")
    assert fp32["verification"]["outputs"][0]["max_abs_error"] < 1e-4


@pytest.mark.slow
def test_exported_program_file_exports(tmp_path, capsys):
    model = FAMILIES["johnson"].build()
    program = torch.export.export(model, (torch.rand(1, 3, 32, 32),))
    torch.export.save(program, tmp_path / "johnson.pt2")
    out = tmp_path / "out"
    code, stdout, err = _export([str(tmp_path / "johnson.pt2"), "--input", "1x3x32x32",
                                 "--range", "-1,1", "--target", "tflite-fp32",
                                 "--verify-samples", "2", "--out", str(out)], capsys)
    assert code == 0, err
    assert "warning" not in stdout  # float only: no calibration, no warning about its size
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["source_model"]["kind"] == "exported_program"
    assert metadata["inputs"][0]["value_range"]["text"] == "-1,1"
    assert metadata["calibration"] is None
    assert metadata["artifacts"][0]["verification"]["outputs"][0]["max_abs_error"] < 1e-4


@pytest.mark.slow
def test_one_failing_target_of_several_exits_1_after_writing_the_others(tmp_path, capsys):
    out = tmp_path / "out"
    # without prelu_as_relu (a default pass) PReLU has no 16x8 kernel
    passes = "constants_to_initializers,decompose_instance_norm,sqrt_as_rsqrt"
    code, stdout, err = _export([ESPCN, *ESPCN_ARGS, "--target", "tflite-fp32",
                                 "--target", "tflite-int16x8", "--onnx-passes", passes,
                                 "--out", str(out)], capsys)
    assert code == 1
    assert "1 of 2 targets failed: tflite-int16x8" in err and "PRELU" in err
    assert "tflite-int16x8 failed" in stdout  # under the table, with what to do
    metadata = json.loads((out / "metadata.json").read_text())
    assert [a["target"] for a in metadata["artifacts"]] == ["tflite-fp32"]
    assert metadata["failed"][0]["target"] == "tflite-int16x8"
    assert (out / "model_fp32.tflite").is_file() and not (out / "model_int16x8.tflite").exists()


def test_help_lists_targets_from_the_enum(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["export", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for target in ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8",
                   "tflite-int16x8", "all"):
        assert target in out
    assert "--onnx-passes" in out and "--min-psnr" in out


def test_unknown_onnx_pass_exits_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["export", ESPCN, "--onnx-passes", "fold_all"])
    assert exited.value.code == 2
    assert "unknown ONNX rewrite fold_all" in capsys.readouterr().err


@pytest.mark.slow
def test_two_input_model_calibrates_from_one_folder_per_input(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from mobilize.exporter.calibration import CALIBRATION_PHOTOS, photo

    for folder, names in (("content", CALIBRATION_PHOTOS[:3]), ("style", CALIBRATION_PHOTOS[3:])):
        (tmp_path / folder).mkdir()
        for name in names:
            pixels = (photo(name) * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / folder / f"{name}.png")
    out = tmp_path / "out"
    code, stdout, err = _export(
        [f"{FAMILIES_FILE}:build_adain", "--input", "1x3x32x32", "--input", "1x3x32x32",
         "--input-name", "content", "--input-name", "style", "--range", "0,1",
         "--output-range", "0,1", "--target", "tflite-int8", "--calib-samples", "3",
         "--verify-samples", "2",
         "--calib-dir", f"content={tmp_path / 'content'}",
         "--calib-dir", f"style={tmp_path / 'style'}", "--out", str(out)], capsys)
    assert code == 0, err
    assert "only 3 calibration samples" not in stdout
    assert "3 calibration samples is few" in stdout  # warned, not refused
    metadata = json.loads((out / "metadata.json").read_text())
    calibration = metadata["calibration"]
    assert calibration["count"] == 3
    assert f"content: {tmp_path / 'content'}" in calibration["source"]
    assert f"style: {tmp_path / 'style'}" in calibration["source"]
    # the folders are used up by calibration: verification falls back to other photographs
    assert "chelsea" in metadata["verification_source"]["source"]
    int8 = metadata["artifacts"][0]
    assert [t["name"] for t in int8["inputs"]] == ["content", "style"]
    assert int8["graph"]["fully_integer"]


class SineActivation(torch.nn.Module):
    """A conv followed by sin: TFLite has no integer SIN kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.conv(x))


def build_sine() -> torch.nn.Module:
    torch.manual_seed(0)
    return SineActivation().eval()


@pytest.mark.slow
def test_float_op_left_in_int8_is_named_in_a_warning(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _export([f"{Path(__file__)}:build_sine", "--input", "1x3x16x16",
                                 "--target", "tflite-int8", "--verify-samples", "2",
                                 "--calib-samples", "8", "--out", str(out)], capsys)
    assert code == 0, err
    assert "tflite-int8 is not fully integer: SIN#" in " ".join(stdout.split())
    int8 = json.loads((out / "metadata.json").read_text())["artifacts"][0]
    assert int8["graph"]["fully_integer"] is False
    assert any(op.startswith("SIN#") for op in int8["graph"]["float_ops"])
    assert "SIN#" in int8["warnings"][0]


@pytest.mark.slow
def test_converter_flags_reach_the_converter(tmp_path):
    # A quantization lever: per-tensor instead of per-channel weights changes the int8 file.
    from dataclasses import replace

    from mobilize.exporter.config import Int8Ranges, Target
    from mobilize.exporter.pipeline import run_export
    from tests.exporter.conftest import family_config

    base = family_config("espcn", tmp_path / "a", targets=(Target.INT8,), verify_samples=1,
                         calib_samples=8, int8_ranges=Int8Ranges.MINMAX)
    per_channel = run_export(base)
    per_tensor = run_export(replace(base, out_dir=tmp_path / "b", converter_flags=(
        ("_experimental_disable_per_channel", True),)))
    from ai_edge_litert.interpreter import Interpreter

    def most_scales(result) -> int:
        interpreter = Interpreter(model_path=str(result.paths[Target.INT8]))
        return max(len(t["quantization_parameters"]["scales"])
                   for t in interpreter.get_tensor_details())

    assert most_scales(per_channel) > 1  # the default: one scale per output channel
    assert most_scales(per_tensor) == 1
    assert per_tensor.targets[0].graph.fully_integer
