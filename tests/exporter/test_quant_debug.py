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

from exporter.errors import ConversionError
from exporter.inspect_tflite import TfliteRunner
from exporter.quant_debug import (
    ROUNDING_RMSE_OVER_SCALE,
    debug_quantization,
    layers_to_keep,
    render_table,
    selective_quantized_model,
    to_json,
)

pytestmark = pytest.mark.slow
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
