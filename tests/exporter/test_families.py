"""The generator families users ship convert at 64x64: float targets match PyTorch closely,
int8 is full integer with its figures reported in metadata.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mobilize.bench.model_input import resolve_model
from mobilize.contract.files import sha256_file
from mobilize.contract.tflite_runner import TfliteRunner
from mobilize.exporter.config import Target
from mobilize.exporter.pipeline import run_export
from tests.exporter.conftest import family_config
from tests.exporter.families import FAMILIES

pytestmark = pytest.mark.slow

FAMILY_NAMES = sorted(FAMILIES)


def _artifact(metadata: dict, target: Target) -> dict:
    return next(a for a in metadata["artifacts"] if a["target"] == target.value)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_float_targets_match_pytorch(family_export, name):
    metadata = json.loads(family_export(name).metadata_path.read_text())
    fp32 = _artifact(metadata, Target.FP32)["verification"]
    fp16 = _artifact(metadata, Target.FP16)["verification"]
    for output in fp32["outputs"]:
        assert output["psnr_db"] is None or output["psnr_db"] > 90, output
        assert output["max_abs_error"] < 1e-3
        assert output["ssim"] > 0.999
    for output in fp16["outputs"]:
        assert output["psnr_db"] > 55, output
        assert output["ssim"] > 0.99


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_int8_is_full_integer_with_int8_io_and_reported_figures(family_export, name):
    result = family_export(name)
    metadata = json.loads(result.metadata_path.read_text())
    int8 = _artifact(metadata, Target.INT8)
    assert int8["graph"]["fully_integer"], int8["graph"]["float_ops"]
    assert int8["graph"]["float_ops"] == []
    assert int8["io"] == "int8"
    for tensor in int8["inputs"] + int8["outputs"]:
        assert tensor["dtype"] == "int8"
        assert tensor["scale"] > 0 and -128 <= tensor["zero_point"] <= 127
        assert tensor["layout"] == "NHWC"
    figures = int8["verification"]["outputs"][0]
    # Reported, not gated: raising int8 quality is separate work. A broken conversion
    # (wrong layout, wrong scale) lands far below 15 dB.
    assert figures["psnr_db"] > 15
    assert 0 < figures["ssim"] <= 1
    assert int8["graph"]["transposes_between_convs"] == 0
    assert int8["graph"]["op_histogram"].get("CONV_2D", 0) >= 1


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_metadata_lists_files_that_exist_with_their_hashes(family_export, name):
    result = family_export(name)
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata["onnx"]["opset"] == 17
    # only the passes that changed the graph (unet: none of them)
    assert set(metadata["onnx"]["rewrites"]) <= set(metadata["onnx"]["passes"])
    for graph in metadata["onnx"]["graphs"]:
        assert (result.out_dir / graph["file"]).is_file()
    assert metadata["tool_versions"]["onnx2tf"] == "1.28.8"
    assert metadata["calibration"]["count"] == 16
    assert "skimage.data" in metadata["calibration"]["source"]
    assert metadata["verification_source"]["count"] == 3
    assert [s["name"] for s in metadata["inputs"]] == list(FAMILIES[name].input_names)
    for artifact in metadata["artifacts"]:
        path = result.out_dir / artifact["file"]
        assert sha256_file(path) == artifact["sha256"]
        assert path.stat().st_size == artifact["size_bytes"]
    assert (result.out_dir / "model.onnx").is_file()
    assert not list(result.out_dir.glob("*.tmp")) and not list(result.out_dir.glob(".*"))


def test_harness_reads_the_export_folder(family_export):
    result = family_export("johnson")
    models = resolve_model(result.out_dir, (Target.INT8.value,))
    assert [m.path for m in models] == [result.out_dir / "model_int8.tflite"]
    assert models[0].sha256 == sha256_file(result.out_dir / "model_int8.tflite")


def test_adain_int16x8_runs_after_sqrt_as_rsqrt(family_export):
    # AdaIN's own sqrt of the style variance has no 16x8 kernel; the default sqrt_as_rsqrt
    # rewrite feeds it through RSQRT, so every target converts, runs and is written.
    result = family_export("adain")
    assert not result.failed
    metadata = json.loads(result.metadata_path.read_text())
    assert "sqrt_as_rsqrt" in metadata["onnx"]["rewrites"]
    assert {a["target"] for a in metadata["artifacts"]} == {t.value for t in Target}
    int16 = _artifact(metadata, Target.INT16X8)
    assert int16["graph"]["fully_integer"]
    assert "SQRT" not in int16["graph"]["op_histogram"]
    assert int16["verification"]["outputs"][0]["psnr_db"] > 30


def test_adain_int16x8_without_the_rewrite_fails_at_sqrt(tmp_path):
    config = family_config("adain", tmp_path / "out", targets=(Target.FP32, Target.INT16X8),
                           onnx_passes=("constants_to_initializers", "decompose_instance_norm"))
    result = run_export(config)
    failed = {t.target: t for t in result.failed}
    assert set(failed) == {Target.INT16X8}
    assert "at SQRT" in (failed[Target.INT16X8].error or "")
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata["failed"][0]["target"] == Target.INT16X8.value


@pytest.mark.parametrize("name", ["unet", "johnson", "cyclegan", "espcn"])
def test_int16x8_converts_full_integer(family_export, name):
    # InstanceNorm families convert because it is decomposed before onnx2tf, and ESPCN's PReLU
    # because it is rewritten to RELU/SUB/MUL/ADD and LEAKY_RELU (both default passes).
    metadata = json.loads(family_export(name).metadata_path.read_text())
    int16 = _artifact(metadata, Target.INT16X8)
    assert int16["graph"]["fully_integer"]
    assert {t["dtype"] for t in int16["inputs"]} == {"int16"}
    assert int16["verification"]["outputs"][0]["psnr_db"] > 40


def test_strip_shows_input_pytorch_tflite_and_difference(family_export):
    result = family_export("espcn")  # x2 SR: the input panel is scaled up to the output
    strip = np.asarray(Image.open(result.out_dir / "verify_int8.png"))
    assert strip.shape == (3 * 128, 4 * 128, 3)  # 3 held-out samples, 4 panels of 128x128
    pytorch_panel, tflite_panel = strip[:128, 128:256], strip[:128, 256:384]
    assert np.abs(pytorch_panel.astype(int) - tflite_panel.astype(int)).mean() < 8


def test_tflite_in_interpreter_reproduces_pytorch_on_a_photo(family_export):
    # Independent of the verifier: feed an NHWC photo crop to the fp32 file by hand.
    import torch

    from mobilize.exporter.calibration import HELD_OUT_PHOTOS, center_crop_resize, photo, to_input
    from tests.exporter.families import FAMILIES

    result = family_export("cyclegan")
    spec = FAMILIES["cyclegan"].inputs(64)[0]
    batch = to_input([center_crop_resize(photo(HELD_OUT_PHOTOS[0]), 64, 64)], spec)
    runner = TfliteRunner((result.out_dir / "model_fp32.tflite").read_bytes())
    out = runner({"image": batch.transpose(0, 2, 3, 1)})["output"].transpose(0, 3, 1, 2)
    with torch.no_grad():
        expected = FAMILIES["cyclegan"].build()(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_espcn_prelu_is_kept_in_float_and_rewritten_for_int8_and_int16x8(family_export):
    # Each target its own graph (issue 14): PRELU has no 16x8 kernel and no int8 kernel in
    # XNNPACK; the float targets keep it (exact, and XNNPACK runs it).
    metadata = json.loads(family_export("espcn").metadata_path.read_text())
    for artifact in metadata["artifacts"]:
        histogram = artifact["graph"]["op_histogram"]
        rewritten = artifact["target"] in (Target.INT8.value, Target.INT16X8.value)
        assert ("PRELU" in histogram) is not rewritten, artifact["target"]
        if rewritten:  # both slopes sets are one value each (random init): LEAKY_RELU alone
            assert histogram["LEAKY_RELU"] == 2
    int8 = _artifact(metadata, Target.INT8)
    assert "prelu_as_leaky_relu" in int8["onnx"]["rewrites"]
    assert "prelu_as_relu" in _artifact(metadata, Target.INT16X8)["onnx"]["rewrites"]
    fp32 = _artifact(metadata, Target.FP32)["verification"]["outputs"][0]
    assert fp32["max_abs_error"] < 1e-5  # exact in float


def test_op_without_int16x8_kernel_is_named_by_the_converter(tmp_path):
    passes = ("constants_to_initializers", "decompose_instance_norm", "sqrt_as_rsqrt")
    config = family_config("espcn", tmp_path / "out", targets=(Target.FP32, Target.INT16X8),
                           onnx_passes=passes)
    failed = {t.target: t for t in run_export(config).failed}
    error = failed[Target.INT16X8].error or ""
    assert "at PRELU" in error and "16x8" in error
    assert "tflite-dynamic" in (failed[Target.INT16X8].hint or "")


@pytest.mark.parametrize("name", ["johnson", "cyclegan"])
def test_reflection_pads_become_slices_in_every_target(family_export, name):
    # XNNPACK has no MIRROR_PAD, and LiteRT's own kernel for it is slow (docs/benchmarks.md)
    metadata = json.loads(family_export(name).metadata_path.read_text())
    for artifact in metadata["artifacts"]:
        histogram = artifact["graph"]["op_histogram"]
        assert "MIRROR_PAD" not in histogram
        assert histogram["CONCATENATION"] >= 2 and histogram["STRIDED_SLICE"] >= 4
    fp32 = _artifact(metadata, Target.FP32)["verification"]["outputs"][0]
    assert fp32["max_abs_error"] < 1e-4


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_int8_of_a_statistics_net_says_why_it_lost_and_what_keeps_it(family_export, name):
    int8 = _artifact(json.loads(family_export(name).metadata_path.read_text()), Target.INT8)
    snr = min(output["snr_db"] for output in int8["verification"]["outputs"])
    histogram = int8["graph"]["op_histogram"]
    statistics = histogram.get("MEAN", 0) > 0 and histogram.get("RSQRT", 0) > 0
    told = [w for w in int8["warnings"] if "own statistics" in w]
    assert statistics == (name in ("johnson", "cyclegan", "adain"))
    if statistics and snr < 30:
        assert len(told) == 1
        assert f"keeps {snr:.1f} dB SNR" in told[0] and "tflite-int16x8" in told[0]
    else:
        assert told == []
