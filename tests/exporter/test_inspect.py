"""Reading a .tflite graph: float ops left in an int8 model are named, layout transposes
between convolutions are counted. The models are built with TensorFlow directly."""

from __future__ import annotations

import numpy as np
import pytest

from mobilize.contract.tflite_runner import TfliteRunner
from mobilize.exporter.inspect_tflite import inspect_graph


def _convert(function, int8: bool, folder) -> bytes:
    import tensorflow as tf

    module = tf.Module()
    module.run = function
    tf.saved_model.save(module, str(folder), signatures={"serving_default": function})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    if int8:
        def dataset():
            rng = np.random.default_rng(0)
            for _ in range(8):
                yield [rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        # Allow float fallback so an op without an int8 kernel stays float.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


@pytest.fixture(scope="module")
def tf_models(tmp_path_factory):
    import tensorflow as tf

    kernel = tf.constant(np.random.default_rng(1).normal(size=(3, 3, 3, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32, name="image")])
    def with_sin(image):
        return tf.math.sin(tf.nn.conv2d(image, kernel, 1, "SAME"))

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32, name="image")])
    def with_transpose(image):
        h = tf.nn.conv2d(image, kernel, 1, "SAME")
        h = tf.transpose(h, (0, 2, 1, 3))
        return tf.nn.conv2d(h, kernel, 1, "SAME")

    return {"sin": _convert(with_sin, True, tmp_path_factory.mktemp("sin")),
            "transpose": _convert(with_transpose, False, tmp_path_factory.mktemp("transpose"))}


def test_float_op_in_an_int8_model_is_named(tf_models):
    report = inspect_graph(tf_models["sin"])
    assert not report.fully_integer
    assert any(op.startswith("SIN#") for op in report.float_ops), report.float_ops
    assert report.op_histogram["CONV_2D"] == 1
    assert report.inputs[0].dtype == "float32"


def test_transpose_between_convolutions_is_counted(tf_models):
    report = inspect_graph(tf_models["transpose"])
    assert report.op_histogram["TRANSPOSE"] == 1
    assert report.transposes_between_convs == 1


def test_runner_matches_tensorflow(tf_models):
    import tensorflow as tf

    image = np.random.default_rng(2).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    out = TfliteRunner(tf_models["transpose"])({"image": image})
    (name, value), = out.items()
    assert value.shape == (1, 8, 8, 3)
    interpreter = tf.lite.Interpreter(model_content=tf_models["transpose"])
    runner = interpreter.get_signature_runner()
    np.testing.assert_allclose(value, runner(image=image)[name], atol=1e-5)
