"""PyTorch is channels-first, onnx2tf's TFLite channels-last: the mapping both ways."""

from __future__ import annotations

import numpy as np

from mobilize.exporter.config import Layout
from mobilize.exporter.tflite_convert import from_layout, layout_of, to_layout


def test_layout_is_read_from_shapes():
    assert layout_of((1, 3, 64, 48), (1, 64, 48, 3)) is Layout.NHWC
    assert layout_of((1, 3, 64, 48), (1, 3, 64, 48)) is Layout.NCHW
    assert layout_of((1, 8, 100), (1, 100, 8)) is Layout.NHWC  # rank 3: channels last too
    assert layout_of((1, 3, 64, 48), (1, 9216)) is Layout.OTHER


def test_round_trip_through_channels_last():
    rng = np.random.default_rng(0)
    for shape in ((2, 3, 5, 7), (1, 4, 9)):
        array = rng.normal(size=shape)
        last = to_layout(array, Layout.NHWC)
        assert last.shape == (shape[0], *shape[2:], shape[1])
        assert last[0, ..., 1].tolist() == array[0, 1].tolist()
        np.testing.assert_array_equal(from_layout(last, Layout.NHWC), array)
    same = rng.normal(size=(1, 3, 4, 4))
    assert from_layout(to_layout(same, Layout.NCHW), Layout.NCHW) is same
