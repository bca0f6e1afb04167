"""tflite-int8 with robust activation ranges (issue 7): the range quantile chosen on samples
split off the calibration set, recorded in metadata.json; still full integer with every I/O
type; the converter's min/max ranges still available; --debug-quant's per-layer report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mobilize.cli import main
from mobilize.errors import UsageError
from mobilize.exporter.calibration import SampleSet
from mobilize.exporter.config import Int8Ranges, IoType, Target
from mobilize.exporter.int8_ranges import (
    DEFAULT_QUANTILE_CHOICES,
    MINMAX_CANDIDATE,
    MSE_CANDIDATE,
)
from mobilize.exporter.pipeline import run_export
from mobilize.exporter.tflite_convert import split_by_photo, split_validation
from tests.exporter.conftest import FAMILIES_FILE, TEST_SIZE, family_config


def _int8(metadata: dict) -> dict:
    return next(a for a in metadata["artifacts"] if a["target"] == Target.INT8.value)


def test_split_validation_keeps_a_quarter_apart():
    arrays = {"image": np.arange(16, dtype=np.float32).reshape(16, 1, 1, 1)}
    calibration, validation = split_validation(SampleSet(arrays, "photos", 16))
    assert validation is not None
    assert (calibration.count, validation.count) == (12, 4)
    assert calibration.arrays["image"].ravel().tolist() == list(range(12))
    assert validation.arrays["image"].ravel().tolist() == list(range(12, 16))
    few = SampleSet({"image": arrays["image"][:3]}, "photos", 3)
    assert split_validation(few) == (few, None)


def test_finetune_holds_out_whole_photographs():
    from mobilize.contract.specs import InputSpec
    from mobilize.exporter.calibration import build_representative_data
    from tests.exporter.families import MINUS_ONE_ONE

    spec = InputSpec("image", (1, 3, 16, 16), MINUS_ONE_ONE)
    samples = build_representative_data((spec,), (), 32, 2).calibration
    assert samples.photo_of_sample == tuple(i % 6 for i in range(32))
    train, validation = split_by_photo(samples)
    assert validation is not None
    # the last two of the six photos (5 + 5 crops): a quarter at least, none in training
    assert set(validation.photo_of_sample) == {4, 5} and validation.count == 10
    assert set(train.photo_of_sample) == {0, 1, 2, 3} and train.count == 22
    assert np.array_equal(validation.arrays["image"][0], samples.arrays["image"][4])
    # samples that are each their own image split as before: the last quarter
    own = SampleSet({"image": samples.arrays["image"]}, "a folder", 32)
    assert split_by_photo(own)[1].count == split_validation(own)[1].count == 8


@pytest.mark.slow
def test_default_int8_chooses_the_quantile_on_split_off_samples(family_export):
    metadata = json.loads(family_export("johnson").metadata_path.read_text())
    int8 = _int8(metadata)
    ranges = int8["int8_ranges"]
    assert ranges["mode"] == Int8Ranges.AUTO.value
    assert set(ranges["rmse_by_quantile"]) == {f"{q:g}" for q in DEFAULT_QUANTILE_CHOICES}
    rmse = ranges["rmse_by_candidate"]
    assert set(rmse) == {MINMAX_CANDIDATE, MSE_CANDIDATE, *ranges["rmse_by_quantile"]}
    assert all(math.isfinite(v) and v > 0 for v in rmse.values())
    assert rmse[ranges["chosen"]] == min(rmse.values())  # the lowest is chosen
    assert rmse[ranges["chosen"]] <= rmse[MINMAX_CANDIDATE]  # never worse than min/max
    if ranges["chosen"] in (MINMAX_CANDIDATE, MSE_CANDIDATE):
        assert (ranges["estimator"], ranges["quantile"]) == (ranges["chosen"], None)
    else:
        assert ranges["estimator"] == "sample-quantile"
        assert ranges["chosen"] == f"{ranges['quantile']:g}"
    # 16 calibration samples: 12 calibrate, 4 choose; the 3 held-out ones only verify
    assert (ranges["calibration_samples"], ranges["validation_samples"]) == (12, 4)
    assert metadata["verification_source"]["count"] == 3
    assert int8["graph"]["fully_integer"]
    assert {t["dtype"] for t in int8["inputs"] + int8["outputs"]} == {"int8"}
    assert "int8_ranges" not in next(a for a in metadata["artifacts"]
                                     if a["target"] == Target.FP32.value)


@pytest.mark.slow
@pytest.mark.parametrize(("io", "dtype"), [(IoType.UINT8, "uint8"), (IoType.FLOAT, "float32")])
def test_quantile_ranges_keep_the_io_type_and_a_full_integer_body(tmp_path, io, dtype):
    config = family_config("espcn", tmp_path, targets=(Target.INT8,), io=io, calib_samples=8,
                           verify_samples=2, int8_ranges=Int8Ranges.QUANTILE)
    result = run_export(config)
    int8 = _int8(json.loads(result.metadata_path.read_text()))
    assert {t["dtype"] for t in int8["inputs"] + int8["outputs"]} == {dtype}
    assert int8["io"] == io.value
    assert int8["graph"]["fully_integer"]
    assert int8["int8_ranges"]["mode"] == "quantile"
    assert int8["int8_ranges"]["quantile"] == 0.5
    assert int8["int8_ranges"]["validation_samples"] == 0
    assert int8["verification"]["outputs"][0]["psnr_db"] > 25


@pytest.mark.slow
def test_minmax_is_the_converters_own_int8(tmp_path):
    config = family_config("espcn", tmp_path, targets=(Target.INT8,), io=IoType.UINT8,
                           calib_samples=8, verify_samples=2, int8_ranges=Int8Ranges.MINMAX)
    int8 = _int8(json.loads(run_export(config).metadata_path.read_text()))
    assert int8["int8_ranges"] == {"mode": "minmax", "estimator": "minmax", "quantile": None,
                                   "chosen": "minmax", "rmse_by_candidate": {},
                                   "rmse_by_quantile": {}, "calibration_samples": 8,
                                   # the converter's file as it is (no TANH here either)
                                   "narrowed_activations": [], "validation_samples": 0}
    assert {t["dtype"] for t in int8["inputs"] + int8["outputs"]} == {"uint8"}
    assert int8["graph"]["fully_integer"]


def test_debug_quant_needs_the_int8_target(tmp_path):
    with pytest.raises(UsageError, match="--debug-quant") as raised:
        family_config("espcn", tmp_path, targets=(Target.FP32,), debug_quant=True)
    assert "--target tflite-int8" in (raised.value.hint or "")


@pytest.mark.slow
def test_debug_quant_prints_the_worst_layers_and_writes_them(tmp_path, capsys):
    shape = "x".join(map(str, (1, 3, TEST_SIZE, TEST_SIZE)))
    code = main(["export", f"{FAMILIES_FILE}:build_johnson", "--input", shape, "--range", "-1,1",
                 "--output-range", "-1,1", "--calib-samples", "8", "--verify-samples", "2",
                 "--debug-quant", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "int8 error per layer, worst first" in out
    assert "RMSE/scale" in out and "keep at higher precision" in out
    int8 = _int8(json.loads((tmp_path / "metadata.json").read_text()))
    debug = int8["quant_debug"]
    assert debug["metric"] == "rmse_over_scale"
    ratios = [layer["rmse_over_scale"] for layer in debug["layers"]]
    assert len(ratios) > 10
    finite = [r if r is not None else math.inf for r in ratios]
    assert finite == sorted(finite, reverse=True)  # worst first (None: NaN, the worst)
    assert {layer["op"] for layer in debug["layers"]} >= {"CONV_2D"}
    keep = debug["keep_at_higher_precision"]
    assert keep == [layer["tensor"] for layer in debug["layers"][:len(keep)]]
    ranges = int8["int8_ranges"]
    assert ranges["chosen"] in {MINMAX_CANDIDATE, MSE_CANDIDATE,
                                *map("{:g}".format, DEFAULT_QUANTILE_CHOICES)}


def test_mse_range_clips_a_lone_outlier_and_keeps_a_uniform_spread():
    from mobilize.exporter.int8_ranges import HISTOGRAM_BINS, mse_optimal_range

    # a ReLU output: most values under 1, one in ten million at 40
    bulk = np.random.default_rng(0).exponential(0.2, 1_000_000)
    counts, _ = np.histogram(bulk, bins=HISTOGRAM_BINS, range=(0.0, 40.0))
    counts = counts * 10.0
    counts[-1] += 1
    low, high = mse_optimal_range(counts, 0.0, 40.0)
    assert low == 0.0  # the low end of a ReLU output stays at zero
    assert 1.0 < high < 10.0  # the grid follows the bulk, not the outlier
    # values spread evenly over the whole range: clipping only adds error
    counts = np.full(HISTOGRAM_BINS, 10.0)
    assert mse_optimal_range(counts, -3.0, 5.0) == (-3.0, 5.0)
