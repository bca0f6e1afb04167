"""GroupNorm and LayerNorm as plain ops, and AdaIN's division by a reshaped std as RSQRT
(issue 14): exact in float (onnxruntime); what makes AnimeGANv2 (GroupNorm(1, C)) convert at
all and the unseen AdaIN net's int8 run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnxsim import simplify
from torch import nn

from mobilize.contract.specs import ValueRange
from mobilize.exporter.config import DEFAULT_ONNX_PASSES, ExportConfig, Target
from mobilize.exporter.onnx_rewrites import apply_passes
from mobilize.exporter.pipeline import run_export
from tests.exporter.unseen_families import FAMILIES

SIZE = 16


class Norms(nn.Module):
    """Every way torch writes a per-image norm over channels: GroupNorm with one group and
    with several (trained affine), LayerNorm over C, H, W and over W alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.one_group = nn.GroupNorm(1, 8)
        self.four_groups = nn.GroupNorm(4, 8)
        self.layer = nn.LayerNorm([8, SIZE, SIZE])
        self.last_axis = nn.LayerNorm(SIZE)
        with torch.no_grad():
            for norm in (self.four_groups, self.layer, self.last_axis):
                norm.weight.uniform_(0.5, 2.0)
                norm.bias.uniform_(-1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x) * 3.0 + 1.0  # a mean and a spread for the norms to take away
        return self.last_axis(self.layer(self.four_groups(self.one_group(x)) * 2.0 + 0.5))


@pytest.fixture(scope="module")
def norms_onnx(tmp_path_factory: pytest.TempPathFactory) -> onnx.ModelProto:
    path = tmp_path_factory.mktemp("norms") / "norms.onnx"
    torch.onnx.export(Norms().eval(), torch.rand(1, 3, SIZE, SIZE), str(path), dynamo=False,
                      opset_version=17, input_names=["x"], output_names=["y"])
    simplified, ok = simplify(onnx.load(str(path)))  # as the clean stage does
    assert ok
    return simplified


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _op_types(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node}


def test_torch_writes_group_norm_around_a_rank_3_instance_norm(norms_onnx) -> None:
    assert {"InstanceNormalization", "Reshape", "LayerNormalization"} <= _op_types(norms_onnx)


@pytest.mark.parametrize("opset", [17, 18])
def test_group_and_layer_norm_become_plain_ops_with_the_same_values(norms_onnx,
                                                                    opset: int) -> None:
    model = onnx.ModelProto()
    model.CopyFrom(norms_onnx)
    if opset != 17:
        model = onnx.version_converter.convert_version(model, opset)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    before = _run(model, x)
    rewritten = apply_passes(model, ("decompose_group_norm", "decompose_layer_norm"))
    ops = _op_types(rewritten)
    assert not ops & {"InstanceNormalization", "LayerNormalization", "Reshape"}
    assert {"ReduceMean", "Sqrt", "Div", "Conv"} <= ops
    np.testing.assert_allclose(_run(rewritten, x), before, atol=2e-5)


def test_the_default_passes_keep_the_values_too(norms_onnx) -> None:
    assert DEFAULT_ONNX_PASSES.index("decompose_group_norm") < DEFAULT_ONNX_PASSES.index(
        "decompose_instance_norm")  # else InstanceNorm's rewrite takes the rank-3 node
    model = onnx.ModelProto()
    model.CopyFrom(norms_onnx)
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    before = _run(model, x)
    np.testing.assert_allclose(_run(apply_passes(model, DEFAULT_ONNX_PASSES), x), before,
                               atol=2e-5)


@pytest.mark.slow
def test_animegan_v2_exports_to_fp32_and_int8(tmp_path: Path) -> None:
    family = FAMILIES["animegan_v2"]
    config = ExportConfig(
        model_ref="animegan_v2", module=family.build(32), out_dir=tmp_path,
        targets=(Target.FP32, Target.INT8), input_shapes=((1, 3, 32, 32),),
        input_names=family.input_names, input_ranges=(ValueRange(*family.input_range),),
        output_range=ValueRange(*family.output_range), calib_samples=8, verify_samples=2)
    metadata = json.loads(run_export(config).metadata_path.read_text())
    assert "InstanceNormalization" not in metadata["onnx"]["op_types"]
    fp32, int8 = metadata["artifacts"]
    assert fp32["verification"]["outputs"][0]["snr_db"] > 40
    assert int8["graph"]["fully_integer"]


class DividesByStd(nn.Module):
    """AdaIN's content normalization (naoto0804/pytorch-AdaIN calc_mean_std): the std goes
    through a reshape before the division; channel 0 is flat, so its std is sqrt(eps)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([torch.zeros_like(x[:, :1]), x], dim=1)
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        std = (flat.var(dim=2) + 1e-5).sqrt().reshape(n, c, 1, 1)
        return (x - flat.mean(dim=2).reshape(n, c, 1, 1)) / std


def test_division_by_a_reshaped_std_becomes_a_product(tmp_path: Path) -> None:
    path = tmp_path / "std.onnx"
    torch.onnx.export(DividesByStd().eval(), torch.rand(1, 3, SIZE, SIZE), str(path),
                      dynamo=False, opset_version=17, input_names=["x"], output_names=["y"])
    model, ok = simplify(onnx.load(str(path)))
    assert ok
    x = np.random.default_rng(2).uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    before = _run(model, x)
    rewritten = apply_passes(model, ("div_by_sqrt_as_rsqrt",))
    producers = {out: node.op_type for node in rewritten.graph.node for out in node.output}
    divisions = [node for node in rewritten.graph.node if node.op_type == "Div"]
    denominators = {producers.get(node.input[1]) for node in divisions}
    # no division by the reshaped std is left; 1 / Sqrt is the converter's RSQRT
    assert "Reshape" not in denominators and "Sqrt" in denominators
    np.testing.assert_allclose(_run(rewritten, x), before, rtol=1e-5, atol=1e-5)
