"""The int8 rewrite of InstanceNorm keeps the float output (onnxruntime) and equalizes the
channels that feed each InstanceNorm."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from benchmarks.research.onnx_rewrites_int8 import MeanOp, NormForm, rewrite_for_int8, sqrt_as_rsqrt


class _Net(nn.Module):
    """Conv -> InstanceNorm (affine and not) with channel gains 1000x apart, as a trained
    net's quiet and loud filters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.norm1 = nn.InstanceNorm2d(6, affine=True)
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1)
        self.norm2 = nn.InstanceNorm2d(4)
        self.out = nn.Conv2d(4, 3, 1)
        with torch.no_grad():
            self.conv1.weight.mul_(torch.logspace(-2, 1, 6).view(-1, 1, 1, 1))
            self.norm1.weight.uniform_(0.5, 2.0)
            self.norm1.bias.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm1(self.conv1(x)))
        return torch.tanh(self.out(torch.relu(self.norm2(self.conv2(h)))))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> onnx.ModelProto:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("int8_rewrite") / "net.onnx"
    torch.onnx.export(_Net().eval(), (torch.rand(1, 3, 16, 16),), str(path), dynamo=False,
                      opset_version=17, input_names=["image"], output_names=["output"])
    return onnx.load(str(path))


def _run(model: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image})[0]


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


def _images(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(count)]


@pytest.mark.parametrize("form", list(NormForm))
@pytest.mark.parametrize("mean_op", list(MeanOp))
@pytest.mark.parametrize("calibrated", [False, True])
def test_float_output_is_unchanged(model: onnx.ModelProto, form: NormForm, mean_op: MeanOp,
                                   calibrated: bool) -> None:
    calibration = [{"image": image} for image in _images(4, seed=1)] if calibrated else None
    rewritten = rewrite_for_int8(_copy(model), calibration, mean_op=mean_op, form=form)
    assert not any(n.op_type == "InstanceNormalization" for n in rewritten.graph.node)
    for op in ("SquaredDifference", "Pow"):
        assert not any(n.op_type == op for n in rewritten.graph.node)
    for image in _images(3, seed=2):
        np.testing.assert_allclose(_run(rewritten, image), _run(model, image), atol=2e-5)


def _conv_weights(model: onnx.ModelProto) -> list[np.ndarray]:
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [initializers[n.input[1]] for n in model.graph.node if n.op_type == "Conv"]


def test_channels_feeding_instance_norm_come_out_equally_loud(model: onnx.ModelProto) -> None:
    calibration = [{"image": image} for image in _images(4, seed=1)]
    before = _conv_weights(model)[0]
    after_rewrite = rewrite_for_int8(_copy(model), calibration)
    after = _conv_weights(after_rewrite)[0]
    spread = [np.ptp(np.log10(np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(1))))
              for w in (before, after)]
    assert spread[0] > 2.5  # filters 1000x apart going in
    assert spread[1] < 1.0  # within 10x after
    conv1 = next(n for n in after_rewrite.graph.node if n.op_type == "Conv")
    assert len(conv1.input) == 2  # the bias before an InstanceNorm is dropped


def test_a_conv_with_other_readers_is_left_alone() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.norm = nn.InstanceNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv(x)
            return self.norm(h) + h  # h read twice: rescaling it would change the sum

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.onnx.export(Shared().eval(), (torch.rand(1, 3, 8, 8),), buffer, dynamo=False,
                      opset_version=17, input_names=["image"], output_names=["output"])
    original = onnx.load_from_string(buffer.getvalue())
    rewritten = rewrite_for_int8(_copy(original))
    image = _images(1, seed=3)[0][:, :, :8, :8].copy()
    np.testing.assert_allclose(_run(rewritten, image), _run(original, image), atol=2e-5)
    np.testing.assert_array_equal(_conv_weights(rewritten)[0], _conv_weights(original)[0])


class _AdaIn(nn.Module):
    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        c_mean = content.mean((2, 3), keepdim=True)
        c_std = (content.var((2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
        s_mean = style.mean((2, 3), keepdim=True)
        s_std = (style.var((2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
        return (content - c_mean) / c_std * s_std + s_mean


def test_style_std_becomes_a_reciprocal_square_root_with_the_same_output() -> None:
    buffer = io.BytesIO()
    torch.onnx.export(_AdaIn(), (torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)), buffer,
                      dynamo=False, opset_version=17, input_names=["content", "style"],
                      output_names=["output"])
    original = onnx.load_from_string(buffer.getvalue())
    rewritten = sqrt_as_rsqrt(_copy(original))
    onnx.checker.check_model(rewritten)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in rewritten.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    # every Sqrt left is only a denominator, which the converter turns into RSQRT
    for node in rewritten.graph.node:
        if node.op_type == "Sqrt":
            assert all(r.op_type == "Div" and r.input[1] == node.output[0]
                       for r in readers[node.output[0]])
    rng = np.random.default_rng(4)
    feeds = {name: rng.uniform(0, 1, (1, 4, 8, 8)).astype(np.float32)
             for name in ("content", "style")}
    run = [onnxruntime.InferenceSession(m.SerializeToString(),
                                        providers=["CPUExecutionProvider"]).run(None, feeds)[0]
           for m in (original, rewritten)]
    np.testing.assert_allclose(run[1], run[0], atol=1e-5)
