"""The ONNX rewrites change no value, and `constants_to_initializers` is what lets onnx2tf
convert InstanceNorm2d(affine=False)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from mobilize.errors import ConversionError, UsageError
from mobilize.exporter.config import DEFAULT_ONNX_PASSES, Target
from mobilize.exporter.model_loader import load_model
from mobilize.exporter.onnx_export import export_onnx
from mobilize.exporter.onnx_rewrites import apply_passes, constants_to_initializers
from mobilize.exporter.pipeline import run_export
from tests.exporter.conftest import family_config
from tests.exporter.families import FAMILIES


@pytest.fixture(scope="module")
def cyclegan_onnx(tmp_path_factory) -> Path:
    spec = FAMILIES["cyclegan"].inputs(32)
    loaded = load_model(
        f"{Path(__file__).with_name('families.py')}:build_cyclegan",
        input_shapes=[s.shape for s in spec], input_ranges=[spec[0].value_range],
        input_names=["image"])
    path = tmp_path_factory.mktemp("onnx") / "cyclegan.onnx"
    export_onnx(loaded, path, opset=17)
    return path


def _run(model: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image})[0]


def _image() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)


def test_instance_norm_affine_false_exports_scale_and_bias_as_constant_nodes(cyclegan_onnx):
    # The cause of onnx2tf's crash: InstanceNormalization's scale/bias are node outputs.
    model = onnx.load(str(cyclegan_onnx))
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert norms
    assert all(producers.get(n.input[1]) == "Constant" for n in norms)


def test_constants_to_initializers_keeps_values(cyclegan_onnx):
    model = onnx.load(str(cyclegan_onnx))
    before = _run(model, _image())
    rewritten = constants_to_initializers(onnx.load(str(cyclegan_onnx)))
    assert not [n for n in rewritten.graph.node if n.op_type == "Constant"]
    initializers = {i.name for i in rewritten.graph.initializer}
    norms = [n for n in rewritten.graph.node if n.op_type == "InstanceNormalization"]
    assert all(n.input[1] in initializers and n.input[2] in initializers for n in norms)
    np.testing.assert_array_equal(_run(rewritten, _image()), before)


def test_decompose_instance_norm_matches_within_float_rounding(cyclegan_onnx):
    model = onnx.load(str(cyclegan_onnx))
    before = _run(model, _image())
    rewritten = apply_passes(onnx.load(str(cyclegan_onnx)), ("decompose_instance_norm",))
    assert not [n for n in rewritten.graph.node if n.op_type == "InstanceNormalization"]
    assert [n for n in rewritten.graph.node if n.op_type == "ReduceMean"]
    np.testing.assert_allclose(_run(rewritten, _image()), before, atol=1e-4)


def test_unknown_rewrite_is_a_usage_error(cyclegan_onnx):
    with pytest.raises(UsageError, match="unknown ONNX rewrite 'fold_everything'"):
        apply_passes(onnx.load(str(cyclegan_onnx)), ("fold_everything",))


@pytest.mark.slow
def test_without_the_rewrite_onnx2tf_fails_and_names_the_node(tmp_path):
    config = family_config("cyclegan", tmp_path / "out", targets=(Target.FP32,),
                           onnx_passes=())
    with pytest.raises(ConversionError) as raised:
        run_export(config)
    message = raised.value.message
    assert "InstanceNormalization node '/net/net.2/InstanceNormalization'" in message
    assert "Variable" in message
    assert f"--onnx-passes {','.join(DEFAULT_ONNX_PASSES)} is the default" in (
        raised.value.hint or "")
    assert {"constants_to_initializers", "decompose_instance_norm"} <= set(DEFAULT_ONNX_PASSES)
    assert not (tmp_path / "out").exists()  # a failed export leaves nothing behind


@pytest.mark.slow
def test_cyclegan_with_instance_norm_kept_whole(tmp_path):
    # Only the crash fix: float matches PyTorch; int16x8 then has SQUARED_DIFFERENCE (onnx2tf's
    # InstanceNorm), which has no int16 kernel: the failure names it.
    config = family_config("cyclegan", tmp_path, targets=(Target.FP32, Target.INT16X8),
                           onnx_passes=("constants_to_initializers",))
    result = run_export(config)
    by_target = {t.target: t for t in result.targets}
    assert by_target[Target.FP32].verification.worst_psnr_db > 80
    assert by_target[Target.FP32].graph.op_histogram["SQUARED_DIFFERENCE"] >= 1
    assert "SQUARED_DIFFERENCE" in (by_target[Target.INT16X8].error or "")


def test_prelu_as_relu_is_exact_for_shared_and_per_channel_slopes(tmp_path):
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.PReLU(4), nn.Conv2d(4, 3, 1),
                        nn.PReLU()).eval()
    with torch.no_grad():  # slopes unlike their 0.25 init, one of them above 1
        net[1].weight.copy_(torch.tensor([0.1, -0.3, 0.6, 1.7]))
    path = tmp_path / "prelu.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), input_names=["image"],
                      opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    rewritten = apply_passes(onnx.load(str(path)), ("prelu_as_relu",))
    ops = [n.op_type for n in rewritten.graph.node]
    assert "PRelu" not in ops
    assert ops.count("LeakyRelu") == 1 and ops.count("Relu") == 1
    np.testing.assert_allclose(_run(rewritten, _image()), _run(model, _image()), atol=1e-6)


def test_reflect_pad_as_slices_is_exact_and_leaves_no_reflect_pad(tmp_path):
    import onnxsim
    import torch
    from torch import nn

    net = nn.Sequential(nn.ReflectionPad2d(4), nn.Conv2d(3, 4, 9),
                        nn.ReflectionPad2d((1, 2, 3, 0)), nn.Conv2d(4, 3, 3),
                        nn.ZeroPad2d(1)).eval()
    path = tmp_path / "pads.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), input_names=["image"],
                      opset_version=17, dynamo=False)
    model, _ = onnxsim.simplify(onnx.load(str(path)))  # as clean_onnx does: constant pads
    rewritten = apply_passes(onnx.ModelProto.FromString(model.SerializeToString()),
                             ("reflect_pad_as_slices",))
    pads = [n for n in rewritten.graph.node if n.op_type == "Pad"]
    assert len(pads) == 1  # the zero pad stays; XNNPACK runs a constant PAD
    assert [a.s for a in pads[0].attribute if a.name == "mode"] in ([], [b"constant"])
    # 4 + 4 mirrored columns and rows for the 9x9 conv, then 1 + 2 columns and 3 rows
    assert sum(n.op_type == "Slice" for n in rewritten.graph.node) == 16 + 6
    # XNNPACK concatenates at most 5 inputs: the 9x9 pad's 9 pieces are grouped
    assert max(len(n.input) for n in rewritten.graph.node if n.op_type == "Concat") <= 4
    np.testing.assert_array_equal(_run(rewritten, _image()), _run(model, _image()))


def test_nearest_upsample_as_depth_to_space_is_exact(tmp_path):
    import onnxsim
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.Upsample(scale_factor=2),
                        nn.Conv2d(5, 3, 1), nn.Upsample(scale_factor=3, mode="nearest"),
                        nn.Upsample(scale_factor=2, mode="bilinear")).eval()
    path = tmp_path / "up.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), input_names=["image"],
                      opset_version=17, dynamo=False)
    model, _ = onnxsim.simplify(onnx.load(str(path)))
    rewritten = apply_passes(onnx.ModelProto.FromString(model.SerializeToString()),
                             ("nearest_upsample_as_depth_to_space",))
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops.count("Resize") == 1  # the bilinear one stays
    assert [a.i for n in rewritten.graph.node if n.op_type == "DepthToSpace"
            for a in n.attribute if a.name == "blocksize"] == [2, 3]
    # x3 tiles 9 copies: grouped so no Concat takes more than XNNPACK's inputs
    assert max(len(n.input) for n in rewritten.graph.node if n.op_type == "Concat") <= 4
    # equal up to float rounding (onnxruntime fuses the bilinear resize differently)
    np.testing.assert_allclose(_run(rewritten, _image()), _run(model, _image()), atol=1e-6)
