"""The exporter on generator families it was never tuned on (issue 14).

Each family of tests/exporter/unseen_families.py (pure torch, written from its paper and
reference repository) goes through the public `mobilize.export` at 64x64 to tflite-fp32 and
tflite-int8 in one call. Weights are random, so int8's picture quality is not asserted here
(benchmarks/unseen_suite.py measures it); what must hold for any user's model is: it
converts, fp32 matches PyTorch, int8 is fully integer, the int8 file is about a quarter of
the float one, and the inputs keep forward()'s order and names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mobilize
from tests.exporter.unseen_families import FAMILIES, UnseenFamily

SIZE = 64
MIN_FP32_SNR_DB = 40.0  # measured 103-138 dB at 64x64
# int8 weights are a quarter of float32's; measured int8/fp32 0.26-0.28 for the families
# whose fp32 file is over 1 MB. Below that, per-channel scales, the reflection pads' slice
# indices and the graph itself weigh in (fsrcnn 0.37 at 108 KB), so size is not judged.
MAX_INT8_SIZE_RATIO = 0.3
SIZE_JUDGED_FROM_BYTES = 1_000_000
# AnimeGANv2: 0.34 (2.6 MB fp32): 36 reflection pads written as slices, each with its own
# index tensors, and GroupNorm's group-average 1x1 convs. Open (issue 14).
SIZE_RATIO_MEASURED_ABOVE = {"animegan_v2": 0.35}


def _export(family: UnseenFamily, out: Path) -> dict:
    result = mobilize.export(
        family.build(SIZE), out=out, targets=["tflite-fp32", "tflite-int8"],
        inputs=[(1, 3, SIZE, SIZE)] * len(family.input_names),
        input_names=family.input_names, value_range=family.input_range,
        output_range=family.output_range, calib_samples=8)
    return json.loads(result.metadata_path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_unseen_family_exports_to_fp32_and_full_integer_int8(name: str, tmp_path: Path) -> None:
    family = FAMILIES[name]
    metadata = _export(family, tmp_path)
    artifacts = {a["target"]: a for a in metadata["artifacts"]}
    assert not metadata["failed"]
    fp32, int8 = artifacts["tflite-fp32"], artifacts["tflite-int8"]
    assert min(o["snr_db"] for o in fp32["verification"]["outputs"]) > MIN_FP32_SNR_DB
    assert int8["graph"]["fully_integer"], int8["graph"]["float_ops"]
    if fp32["size_bytes"] >= SIZE_JUDGED_FROM_BYTES:
        bound = SIZE_RATIO_MEASURED_ABOVE.get(name, MAX_INT8_SIZE_RATIO)
        assert int8["size_bytes"] <= bound * fp32["size_bytes"]
    for artifact in (fp32, int8):  # by position, in forward()'s order, with its names
        assert [t["name"] for t in artifact["inputs"]] == list(family.input_names)
    ranges = int8["int8_ranges"]["rmse_by_candidate"]
    assert ranges[int8["int8_ranges"]["chosen"]] <= ranges["minmax"]
    _check_narrowed_tanh(name, int8["int8_ranges"]["narrowed_activations"])
    _check_capped_rsqrt(name, int8["int8_ranges"]["narrowed_activations"])
    _check_transposed_convolutions(name, fp32, int8)
    _check_advice(int8)


# The families with ConvTranspose2d: int8 runs them as CONV_2D + DEPTH_TO_SPACE (LiteRT's
# int8 TRANSPOSE_CONV made pix2pix's int8 file 3x slower than fp32); fp32 keeps them.
TRANSPOSED = {"cyclegan_resnet", "pix2pix_unet", "fsrcnn"}


def _check_transposed_convolutions(name: str, fp32: dict, int8: dict) -> None:
    rewritten = "conv_transpose_as_depth_to_space" in int8["onnx"]["rewrites"]
    assert rewritten == (name in TRANSPOSED)
    assert "TRANSPOSE_CONV" not in int8["graph"]["op_histogram"]
    assert ("TRANSPOSE_CONV" in fp32["graph"]["op_histogram"]) == (name in TRANSPOSED)
    if rewritten:
        assert int8["graph"]["op_histogram"]["DEPTH_TO_SPACE"] >= 1
        # FSRCNN's x3 layer has 9 phases: concatenated in groups XNNPACK takes
        assert "CONCATENATION" not in int8["graph"]["cpu_delegate"]["ops_outside"]


# The families whose TANH layers feed convolutions (the others' tanh is the graph output)
NARROWED_TANH = {"espcn": 2}


def _check_capped_rsqrt(name: str, narrowed: list[dict]) -> None:
    """AdaIN's int8 RSQRT (1/std of each statistic) is capped below the calibrated
    1/sqrt(eps) of flat channels; families without per-image statistics have no RSQRT."""
    capped = [op for op in narrowed if op["op"] == "RSQRT"]
    if name == "adain_vgg":
        assert len(capped) == 2  # content's and style's
    if not FAMILIES[name].per_image_norm:
        assert not capped
    for op in capped:
        assert op["narrowed_range"][0] == 0.0 and op["step_ratio"] > 1.0


def _check_narrowed_tanh(name: str, narrowed: list[dict]) -> None:
    narrowed = [op for op in narrowed if op["op"] == "TANH"]
    assert len(narrowed) == NARROWED_TANH.get(name, 0)
    for op in narrowed:  # inside the fixed range, holding zero, a finer step
        low, high = op["narrowed_range"]
        assert -1.0 <= low <= 0.0 <= high <= 1.0 and op["step_ratio"] > 1.0


def _check_advice(int8: dict) -> None:
    """Under 30 dB the warning quotes this model's own figures, and the target it names
    keeps 30 dB here and is the fastest that does."""
    snr = min(o["snr_db"] for o in int8["verification"]["outputs"])
    measured = int8.get("alternatives_measured", [])
    if snr >= 30:
        assert measured == []
        return
    [told] = [w for w in int8["warnings"] if "Measured on this model in this run" in w]
    working = [o for o in measured if o["error"] is None]
    lines = {line.split()[0]: line for line in told.splitlines()[1:] if line.startswith("    ")}
    for option in working:  # metadata keeps 2 decimals, the warning 1
        quoted = float(lines[option["target"]].split()[1])
        assert abs(quoted - option["snr_db"]) <= 0.051, (option, told)
    keeping = sorted((o for o in working[1:] if o["snr_db"] >= 30), key=lambda o: o["cpu_ms"])
    if keeping:
        assert f"--target {keeping[0]['target']}" in told
    else:
        assert "None of them reaches 30 dB" in told
