"""The per-layer int8 error report finds the layers that lose the picture.

A tiny SavedModel (conv -> instance-norm statistics -> conv, as onnx2tf writes an
InstanceNorm2d after decomposition) goes through TensorFlow's real QuantizationDebugger.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from mobilize.contract.tflite_runner import TfliteRunner
from mobilize.errors import ConversionError
from mobilize.exporter.config import IoType
from mobilize.exporter.inspect_tflite import inspect_graph
from mobilize.exporter.int8_ranges import (
    MINMAX_CANDIDATE,
    RangeEstimator,
    RangeOptions,
    int8_converter,
    quantize_choosing_ranges,
    quantize_with_ranges,
)
from mobilize.exporter.quant_debug import (
    ROUNDING_RMSE_OVER_SCALE,
    debug_quantization,
    layers_to_keep,
    render_table,
    to_json,
)

pytestmark = pytest.mark.slow


def selective_quantized_model(saved_model: Path, dataset, keep: list[str]) -> bytes:
    """The int8 model with the `keep` layers left in float (TensorFlow's denylisted_nodes):
    how the test checks that the layers the report names are the ones that lose the picture."""
    import tensorflow as tf

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(keep))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=int8_converter(saved_model, dataset), debug_dataset=dataset,
        debug_options=options)
    return debugger.get_nondebug_quantized_model()
SIZE = 16


def _save_norm_model(path: Path) -> None:
    """content (1,16,16,3) and style (1,8,8,3): conv, per-channel normalization of content
    with the style's statistics (AdaIN), conv. Channel gains 0.02..20 make the variance
    tensor span a range int8 cannot hold in one scale."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w1 = (rng.normal(size=(3, 3, 3, 8)) * np.geomspace(0.02, 20, 8)).astype(np.float32)
    w2 = rng.normal(size=(3, 3, 8, 3)).astype(np.float32) * 0.3

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32, "content"),
                                      tf.TensorSpec((1, SIZE // 2, SIZE // 2, 3), tf.float32,
                                                    "style")])
        def serve(self, content: tf.Tensor, style: tf.Tensor) -> dict[str, tf.Tensor]:
            c = tf.nn.conv2d(content, w1, 1, "SAME")
            s = tf.nn.conv2d(style, w1, 1, "SAME")
            c_mean = tf.reduce_mean(c, axis=[1, 2], keepdims=True)
            centered = c - c_mean
            c_var = tf.reduce_mean(centered * centered, axis=[1, 2], keepdims=True)
            s_mean = tf.reduce_mean(s, axis=[1, 2], keepdims=True)
            s_centered = s - s_mean
            s_std = tf.sqrt(tf.reduce_mean(s_centered * s_centered, axis=[1, 2],
                                           keepdims=True) + 1e-5)
            mixed = centered / tf.sqrt(c_var + 1e-5) * s_std + s_mean
            return {"output": tf.tanh(tf.nn.conv2d(mixed, w2, 1, "SAME"))}

    net = Net()
    tf.saved_model.save(net, str(path), signatures={"serving_default": net.serve})


def _dataset(count: int, seed: int = 0):
    def generate():
        rng = np.random.default_rng(seed)
        for _ in range(count):
            yield {"content": rng.uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32),
                   "style": rng.uniform(0, 1, (1, SIZE // 2, SIZE // 2, 3)).astype(np.float32)}
    return generate


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quant_debug") / "saved_model"
    _save_norm_model(path)
    return path


@pytest.fixture(scope="module")
def layers(saved_model: Path):
    return debug_quantization(saved_model, _dataset(8))


def test_layers_come_worst_first_with_their_ops(layers) -> None:
    ratios = [layer.severity for layer in layers]
    assert ratios == sorted(ratios, reverse=True)
    ops = {layer.op_name for layer in layers}
    assert {"CONV_2D", "MEAN", "RSQRT"} <= ops
    for layer in layers:
        assert layer.scale > 0 and layer.num_elements > 0
        if math.isfinite(layer.rmse):
            assert math.isclose(layer.rmse_over_scale, layer.rmse / layer.scale)
        else:  # NaN differences: unmeasurable, ranked worst
            assert layer.severity == math.inf


def test_the_normalization_loses_most_and_convs_lose_only_rounding(layers) -> None:
    # The per-image statistics (the variance tensor's one scale for channels 1000x apart,
    # then RSQRT) add far more than rounding; a convolution adds about rounding alone.
    worst = layers[0]
    assert worst.op_name in {"RSQRT", "MEAN", "MUL", "SQRT", "DIV"}
    assert worst.severity > 1.0
    conv = [layer for layer in layers if layer.op_name == "CONV_2D"]
    assert all(layer.rmse_over_scale < 2 * ROUNDING_RMSE_OVER_SCALE for layer in conv)


def test_keep_list_json_and_table_name_the_same_layers(layers) -> None:
    keep = layers_to_keep(layers)
    assert keep and keep[0] == layers[0].tensor_name
    assert all(layer.severity > 0.7 for layer in layers if layer.tensor_name in keep)
    report = to_json(layers)
    assert report["keep_at_higher_precision"] == keep
    assert [entry["tensor"] for entry in report["layers"]] == [x.tensor_name for x in layers]
    assert report["layers"][0]["op"] == layers[0].op_name

    console = Console(file=io.StringIO(), width=160)
    console.print(render_table(layers, top=5))
    text = console.file.getvalue()
    assert "worst first (5 of" in text
    assert layers[0].op_name in text and "higher precision" in text


def test_keeping_the_named_layers_in_float_buys_the_error_back(saved_model: Path,
                                                              layers) -> None:
    import tensorflow as tf

    full_int8 = selective_quantized_model(saved_model, _dataset(8), keep=[])
    kept = selective_quantized_model(saved_model, _dataset(8), keep=layers_to_keep(layers))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    float_model = converter.convert()

    feeds = next(_dataset(1, seed=7)())
    reference = TfliteRunner(float_model)(feeds)["output"]

    def error(model: bytes) -> float:
        return float(np.sqrt(np.mean((TfliteRunner(model)(feeds)["output"] - reference) ** 2)))

    assert error(kept) < 0.75 * error(full_int8)


def test_samples_that_do_not_fit_the_model_are_a_clear_error(saved_model: Path) -> None:
    def content_only():
        yield {"content": np.zeros((1, SIZE, SIZE, 3), np.float32)}

    with pytest.raises(ConversionError, match="quantization debugger failed") as caught:
        debug_quantization(saved_model, content_only)
    assert "tflite-int8" in caught.value.hint


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """image (1,16,16,3) -> conv -> relu -> conv: int8 error here is all range and rounding."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    w1 = rng.normal(size=(3, 3, 3, 8)).astype(np.float32)
    w2 = rng.normal(size=(3, 3, 8, 3)).astype(np.float32) * 0.2

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32, "image")])
        def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            hidden = tf.nn.relu(tf.nn.conv2d(image, w1, 1, "SAME"))
            return {"output": tf.nn.conv2d(hidden, w2, 1, "SAME")}

    net = Net()
    path = tmp_path_factory.mktemp("conv") / "saved_model"
    tf.saved_model.save(net, str(path), signatures={"serving_default": net.serve})
    return path


def _images(count: int, seed: int = 0, loud_first: bool = False):
    """Photos-like samples in [0, 1]; with loud_first the first one is 30x louder, the one
    unusual crop that min/max ranges stretch to fit."""
    def generate():
        rng = np.random.default_rng(seed)
        for index in range(count):
            image = rng.uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
            yield {"image": image * (30.0 if loud_first and index == 0 else 1.0)}
    return generate


def _rmse_against_float(saved_model: Path, model: bytes, seeds: range) -> float:
    import tensorflow as tf

    float_model = tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert()
    errors = []
    for seed in seeds:
        feeds = next(_images(1, seed=seed)())
        reference = TfliteRunner(float_model)(feeds)["output"]
        errors.append(np.mean((TfliteRunner(model)(feeds)["output"] - reference) ** 2))
    return float(np.sqrt(np.mean(errors)))


def test_min_max_ranges_are_the_converters_own(saved_model: Path) -> None:
    converter = int8_converter(saved_model, _dataset(8))
    import tensorflow as tf

    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    own = converter.convert()
    ours = quantize_with_ranges(saved_model, _dataset(8), RangeOptions(RangeEstimator.MIN_MAX))
    feeds = next(_dataset(1, seed=5)())
    np.testing.assert_array_equal(TfliteRunner(ours)(feeds)["output"],
                                  TfliteRunner(own)(feeds)["output"])


def test_sample_quantile_ranges_ignore_one_unusual_sample(conv_model: Path) -> None:
    data = _images(8, loud_first=True)
    min_max = quantize_with_ranges(conv_model, data, RangeOptions(RangeEstimator.MIN_MAX))
    robust = quantize_with_ranges(conv_model, data, RangeOptions(quantile=0.75))
    graph = inspect_graph(robust)
    assert graph.fully_integer
    assert [t.dtype for t in graph.inputs] == ["int8"]
    held_out = range(10, 14)
    assert (_rmse_against_float(conv_model, robust, held_out)
            < 0.2 * _rmse_against_float(conv_model, min_max, held_out))


@pytest.mark.parametrize(("io_type", "dtype"), [(IoType.FLOAT, "float32"),
                                                (IoType.UINT8, "uint8")])
def test_other_io_types_keep_an_integer_body(conv_model: Path, io_type: IoType,
                                             dtype: str) -> None:
    model = quantize_with_ranges(conv_model, _images(8), io=io_type)
    graph = inspect_graph(model)
    assert graph.fully_integer  # QUANTIZE/DEQUANTIZE at the edges only
    assert [t.dtype for t in graph.inputs] == [dtype]
    assert [t.dtype for t in graph.outputs] == [dtype]


def test_a_quantile_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="quantile"):
        RangeOptions(quantile=1.5)


def test_the_report_can_describe_the_model_exported_with_robust_ranges(conv_model: Path) -> None:
    data = _images(8, loud_first=True)
    default = {x.tensor_name: x for x in debug_quantization(conv_model, data)}
    robust = {x.tensor_name: x for x in debug_quantization(conv_model, data,
                                                           ranges=RangeOptions(quantile=0.5))}
    assert set(robust) == set(default)
    convs = [name for name, layer in robust.items() if layer.op_name == "CONV_2D"]
    assert len(convs) == 2
    # the loud sample set every range under min/max; the median ranges are ~30x tighter
    for name in convs:
        assert robust[name].scale < 0.2 * default[name].scale


def test_range_options_need_a_saved_model(saved_model: Path) -> None:
    converter = int8_converter(saved_model, _dataset(2))
    with pytest.raises(ConversionError, match="SavedModel folder"):
        debug_quantization(converter, _dataset(2), ranges=RangeOptions())


def test_the_chosen_quantile_is_the_one_closest_to_float(conv_model: Path) -> None:
    choice = quantize_choosing_ranges(conv_model, _images(8, loud_first=True),
                                      _images(3, seed=20), quantiles=(0.5, 1.0))
    assert set(choice.rmse_by_quantile) == {0.5, 1.0}
    assert set(choice.rmse_by_candidate) == {MINMAX_CANDIDATE, "0.5", "1", "mse"}
    assert choice.chosen == "0.5"
    # quantile 1.0 is min/max: the loud calibration sample's range, far from the typical one
    assert choice.options.quantile == 0.5
    assert choice.rmse_by_quantile[0.5] < choice.rmse_by_quantile[1.0]
    graph = inspect_graph(choice.model)
    assert graph.fully_integer and [t.dtype for t in graph.inputs] == ["int8"]
    # the returned model is the chosen one: its error on other samples is the low one
    assert (_rmse_against_float(conv_model, choice.model, range(30, 33))
            < 0.5 * _rmse_against_float(
                conv_model, quantize_with_ranges(conv_model, _images(8, loud_first=True),
                                                 RangeOptions(RangeEstimator.MIN_MAX)),
                range(30, 33)))


def test_the_choice_never_loses_to_the_converters_min_max(conv_model: Path) -> None:
    # Typical samples only: nothing for a quantile to clip away, min/max is hard to beat.
    calibration, validation = _images(8), _images(3, seed=40)
    choice = quantize_choosing_ranges(conv_model, calibration, validation)
    rmse = choice.rmse_by_candidate
    assert list(rmse) == [MINMAX_CANDIDATE, "0.35", "0.5", "0.75", "mse"]
    assert rmse[choice.chosen] == min(rmse.values())
    assert rmse[choice.chosen] <= rmse[MINMAX_CANDIDATE]
    if choice.chosen == MINMAX_CANDIDATE:  # then the file is the converter's own int8
        assert choice.options.estimator is RangeEstimator.MIN_MAX
        own = quantize_with_ranges(conv_model, calibration,
                                   RangeOptions(RangeEstimator.MIN_MAX))
        feeds = next(validation())
        np.testing.assert_array_equal(TfliteRunner(choice.model)(feeds)["output"],
                                      TfliteRunner(own)(feeds)["output"])
    # the figure recorded is the returned model's own error on the validation samples
    assert math.isclose(_rmse_on(conv_model, choice.model, validation), rmse[choice.chosen],
                        rel_tol=0.05)


def _rmse_on(saved_model: Path, model: bytes, samples) -> float:
    import tensorflow as tf

    float_model = TfliteRunner(tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
                               .convert())
    int8 = TfliteRunner(model)
    errors = [np.mean((int8(feeds)["output"] - float_model(feeds)["output"]) ** 2)
              for feeds in samples()]
    return float(np.sqrt(np.mean(errors)))
