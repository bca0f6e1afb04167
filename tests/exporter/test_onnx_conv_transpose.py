"""ConvTranspose as Conv + DepthToSpace (+ Slice): exact in float (onnxruntime), and what
the rewrite leaves alone."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from mobilize.exporter.onnx_conv_transpose import conv_transpose_as_depth_to_space

# (C_in, C_out, kernel, stride, padding, output_padding): pix2pix's 4x4/2/1, CycleGAN's
# 3x3/2/1 with output_padding 1, FSRCNN's 9x9/2/4/1, a stride 3 and a no-padding case
CASES = [(6, 4, 4, 2, 1, 0), (6, 4, 3, 2, 1, 1), (5, 3, 9, 2, 4, 1), (4, 2, 5, 3, 2, 2),
         (3, 5, 2, 2, 0, 0), (3, 2, 3, 2, 0, 0)]


def _onnx(module: nn.Module, shape: tuple[int, ...]) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(module, (torch.zeros(shape),), buffer, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_conv_transpose_becomes_conv_and_depth_to_space_exactly(case):
    c_in, c_out, kernel, stride, padding, extra = case
    torch.manual_seed(0)
    module = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, output_padding=extra)
    shape = (1, c_in, 7, 9)
    model = _onnx(module.eval(), shape)
    rewritten = conv_transpose_as_depth_to_space(model)
    ops = [n.op_type for n in rewritten.graph.node]
    phases = stride * stride
    assert ops[:phases] == ["Conv"] * phases and "ConvTranspose" not in ops
    spread = ops.index("DepthToSpace")
    assert set(ops[phases:spread]) == {"Concat"}
    # XNNPACK concatenates at most 5 inputs: stride 3's 9 phases are joined in groups
    assert all(len(n.input) <= 4 for n in rewritten.graph.node if n.op_type == "Concat")
    # one Conv per output phase holds only that phase's taps: no zero padding in the kernels
    kernels = [i for i in rewritten.graph.initializer if i.name.endswith("_weight")]
    assert sum(np.prod(k.dims) for k in kernels) == module.weight.numel()
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = module(torch.from_numpy(x)).detach().numpy()
    got = _run(rewritten, x)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) < 1e-4 * max(1.0, float(np.abs(want).max()))


def test_grouped_and_dilated_transposed_convolutions_are_left_alone():
    for module in (nn.ConvTranspose2d(4, 4, 4, 2, 1, groups=2),
                   nn.ConvTranspose2d(4, 4, 3, 2, 1, dilation=2),
                   nn.ConvTranspose2d(4, 4, 3, 1, 1)):
        model = _onnx(module.eval(), (1, 4, 6, 6))
        ops = [n.op_type for n in conv_transpose_as_depth_to_space(model).graph.node]
        assert ops == ["ConvTranspose"]
