"""int8 TANH outputs narrowed to the range their input can reach; LOGISTIC left fixed."""

from __future__ import annotations

import numpy as np
import pytest

from mobilize.exporter.tflite_activations import narrow_fixed_output_ranges

SIZE = 16


def _int8_file(activations: tuple[str, ...], last_activation: str | None,
               seed: int = 0) -> tuple[bytes, object, np.ndarray]:
    """A conv -> activation chain, then a conv [-> last_activation] (ESPCN's shape), full
    integer from the TFLite converter; (file, Keras model, held-out images). The
    convolutions are scaled small so the activations stay near their centre, as in a
    trained net."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    small = tf.keras.initializers.RandomNormal(stddev=0.05)
    image = tf.keras.Input((SIZE, SIZE, 3), batch_size=1, name="image")
    x = image
    for activation in activations:
        x = tf.keras.layers.Conv2D(16, 3, padding="same", activation=activation,
                                   kernel_initializer=small)(x)
    output = tf.keras.layers.Conv2D(3, 3, padding="same", activation=last_activation)(x)
    model = tf.keras.Model(image, output)
    rng = np.random.default_rng(seed)
    calibration = rng.random((8, SIZE, SIZE, 3), dtype=np.float32)

    def samples():
        for index in range(len(calibration)):
            yield [calibration[index:index + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert(), model, rng.random((4, SIZE, SIZE, 3), dtype=np.float32)


def _run(content: bytes, images: np.ndarray) -> np.ndarray:
    from mobilize.contract.tflite_runner import _interpreter

    interpreter = _interpreter(content, delegates=False)
    interpreter.allocate_tensors()
    source, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for image in images:
        scale, zero_point = source["quantization"]
        quantized = np.clip(np.round(image / scale + zero_point), -128, 127).astype(np.int8)
        interpreter.set_tensor(source["index"], quantized[None])
        interpreter.invoke()
        scale, zero_point = result["quantization"]
        outputs.append((interpreter.get_tensor(result["index"]).astype(np.float32)
                        - zero_point) * scale)
    return np.concatenate(outputs)


def _snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.var(reference) / np.mean((reference - other) ** 2)))


@pytest.fixture(scope="module")
def convolutions_after() -> tuple[bytes, object, np.ndarray]:
    return _int8_file(("tanh", "tanh"), last_activation=None)


def test_a_tanh_before_a_convolution_gets_finer_steps(convolutions_after) -> None:
    content, model, images = convolutions_after
    narrowed_file, narrowed = narrow_fixed_output_ranges(content)
    assert [op.op for op in narrowed] == ["TANH", "TANH"]
    tanh = narrowed[1]
    assert tanh.fixed_range == pytest.approx((-1.0, 127 / 128))
    # the new range is tanh of its input's range: it holds zero and sits inside the old
    assert -1.0 <= tanh.narrowed_range[0] <= 0.0 <= tanh.narrowed_range[1] <= 1.0
    assert tanh.step_ratio > 1.5  # 2.07 and 3.51 measured
    reference = model.predict(images, verbose=0)
    before = _snr_db(reference, _run(content, images))
    after = _snr_db(reference, _run(narrowed_file, images))
    assert after > before + 2.0, (before, after)  # 29.6 -> 34.9 dB measured


def test_a_graph_output_tanh_and_a_sigmoid_keep_their_fixed_ranges() -> None:
    from mobilize.contract.tflite_runner import _interpreter

    content, _, _ = _int8_file(("tanh", "sigmoid"), last_activation="tanh")
    narrowed_file, narrowed = narrow_fixed_output_ranges(content)
    # the inner tanh is narrowed; the output's scale is what an app reads, and the sigmoid
    # stays on 1/256: LiteRT's int8 LOGISTIC refuses any other output scale
    assert [op.op for op in narrowed] == ["TANH"]
    output = _interpreter(narrowed_file, delegates=False).get_output_details()[0]
    assert output["quantization"] == (pytest.approx(1 / 128), 0)


def test_a_float_file_is_returned_as_it_is() -> None:
    import tensorflow as tf

    image = tf.keras.Input((SIZE, SIZE, 3), batch_size=1)
    model = tf.keras.Model(image, tf.keras.layers.Conv2D(3, 3, activation="tanh")(image))
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert narrow_fixed_output_ranges(content) == (content, ())
