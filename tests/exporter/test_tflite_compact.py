"""Quantized files store each distinct quantization vector once, and read back the same."""

from __future__ import annotations

import numpy as np
import pytest

from mobilize.exporter.inspect_tflite import delegate_coverage
from mobilize.exporter.tflite_compact import quantization_key, with_shared_quantization

SIZE = 16
CHANNELS = 32


@pytest.fixture(scope="module")
def converter_int8() -> bytes:
    """A depthwise-separable net straight from the TFLite converter, full integer: the
    per-channel weights of each layer carry their own zero-point vector."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((SIZE, SIZE, 3), batch_size=1, name="image")
    x = tf.keras.layers.Conv2D(CHANNELS, 1, activation="relu")(image)
    for _ in range(3):
        x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = tf.keras.layers.Conv2D(CHANNELS, 1, activation="relu")(x)
    output = tf.keras.layers.Conv2D(3, 1, activation="tanh")(x)
    model = tf.keras.Model(image, output)
    rng = np.random.default_rng(0)

    def samples():
        for _ in range(4):
            yield [rng.random((1, SIZE, SIZE, 3), np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _tensor_records(content: bytes) -> list[tuple]:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    tensors = model.subgraphs[0].tensors
    return [(t.name, t.type, np.asarray(t.shape).tobytes(),
             None if model.buffers[t.buffer].data is None
             else np.asarray(model.buffers[t.buffer].data).tobytes(),
             None if t.quantization is None else quantization_key(t.quantization))
            for t in tensors]


def _outputs(content: bytes, image: np.ndarray, delegates: bool) -> np.ndarray:
    from mobilize.contract.tflite_runner import _interpreter

    runner = _interpreter(content, delegates=delegates).get_signature_runner()
    return next(iter(runner(image=image).values()))


def test_the_shared_file_is_smaller_and_every_tensor_reads_the_same(converter_int8):
    compact = with_shared_quantization(converter_int8)
    # 13 per-channel tensors of 32 channels share one int64 zero-point vector: 12 x 256 B
    assert len(compact) <= len(converter_int8) - 12 * CHANNELS * 8
    assert _tensor_records(compact) == _tensor_records(converter_int8)


@pytest.mark.parametrize("delegates", [True, False], ids=["xnnpack", "builtin"])
def test_the_shared_file_computes_the_same_outputs_bit_for_bit(converter_int8, delegates):
    compact = with_shared_quantization(converter_int8)
    image = np.random.default_rng(1).integers(-128, 128, (1, SIZE, SIZE, 3), dtype=np.int8)
    np.testing.assert_array_equal(_outputs(compact, image, delegates),
                                  _outputs(converter_int8, image, delegates))
    assert delegate_coverage(compact) == delegate_coverage(converter_int8)


def test_constant_buffers_stay_16_byte_aligned(converter_int8):
    from tensorflow.lite.python import schema_py_generated as schema

    file = bytearray(with_shared_quantization(converter_int8))
    model = schema.Model.GetRootAs(file, 0)
    base = np.frombuffer(file, np.uint8).__array_interface__["data"][0]
    starts = [model.Buffers(i).DataAsNumpy().__array_interface__["data"][0] - base
              for i in range(model.BuffersLength()) if model.Buffers(i).DataLength()]
    assert starts and all(start % 16 == 0 for start in starts)


def test_a_file_with_nothing_to_share_comes_back_unchanged():
    import tensorflow as tf

    image = tf.keras.Input((SIZE, SIZE, 3), batch_size=1)
    model = tf.keras.Model(image, tf.keras.layers.Conv2D(3, 3)(image))
    fp32 = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert with_shared_quantization(fp32) is fp32
