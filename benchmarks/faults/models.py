"""The two models of benchmarks/faults: tiny.tflite (two 3x3 convs on 32x32x3, ~3 KB) and
big.tflite (one 256->256 3x3 conv on 16x16, ~2.4 MB: a push long enough to cut)."""

import sys
from pathlib import Path

import tensorflow as tf

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
tiny = tf.keras.Sequential([tf.keras.Input((32, 32, 3), batch_size=1),
                            tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                            tf.keras.layers.Conv2D(3, 3, padding="same")])
big = tf.keras.Sequential([tf.keras.Input((16, 16, 256), batch_size=1),
                           tf.keras.layers.Conv2D(256, 3, padding="same")])
for name, model in (("tiny", tiny), ("big", big)):
    (out / f"{name}.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
