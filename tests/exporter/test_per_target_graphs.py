"""Each target gets the ONNX graph that suits it (issue 14): a rewrite one target needs is not
forced on the others, targets whose graphs come out the same share one onnx2tf conversion,
and metadata.json and the stage lines name the rewrites that really changed each graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from mobilize.exporter.config import (
    ALL_TARGETS,
    DEFAULT_ONNX_PASSES,
    PASS_TARGETS,
    ExportConfig,
    Target,
)
from mobilize.exporter.onnx_export import OnnxArtifact
from mobilize.exporter.onnx_rewrites import (
    LEAKY_SLOPES,
    apply_passes,
    apply_passes_reporting,
)
from mobilize.exporter.pipeline import run_export
from mobilize.exporter.target_graphs import plan_graphs, rewrites_line

SIZE = 16


class PreluShuffleNet(nn.Module):
    """Per-channel PReLU (slopes unlike their init, one negative, one above 1) and
    PixelShuffle(2) behind a conv: what SR nets are made of."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PReLU(8),
                                  nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
        with torch.no_grad():
            self.body[1].weight.copy_(torch.tensor([0.1, -0.2, 0.3, 0.05, 0.6, 1.4, 0.2, 0.25]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PlainNet(nn.Sequential):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))


class ConcatReluNet(nn.Module):
    """A UNet decoder's ReLU on a concatenation, one on a tensor read twice, and one right
    after a conv (which the converter fuses into CONV_2D)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
        self.c, self.d = nn.Conv2d(8, 3, 1), nn.Conv2d(4, 3, 1)
        self.e = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.a(x)
        joined = torch.cat([skip, self.b(x)], 1)
        return self.c(torch.relu(joined)) + self.d(torch.relu(skip)) + torch.relu(self.e(x))


def _onnx(net: nn.Module, path: Path) -> Path:
    torch.onnx.export(net.eval(), (torch.zeros(1, 3, SIZE, SIZE),), str(path),
                      input_names=["image"], output_names=["output"], opset_version=17,
                      dynamo=False)
    return path


def _run(model: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image})[0]


def _image() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)


def test_each_target_gets_only_the_passes_meant_for_it():
    config = ExportConfig(model_ref="x", out_dir=Path("out"), targets=ALL_TARGETS)
    fp32, int8, int16 = (config.passes_for(t) for t in
                         (Target.FP32, Target.INT8, Target.INT16X8))
    assert "prelu_as_relu" not in fp32 and "prelu_as_leaky_relu" not in fp32  # PRELU kept
    assert "prelu_as_leaky_relu" in int8 and "prelu_as_relu" not in int8
    assert "prelu_as_relu" in int16 and "prelu_as_leaky_relu" not in int16
    for depth_to_space in ("pixel_shuffle_as_depth_to_space",
                           "nearest_upsample_as_depth_to_space"):
        assert depth_to_space in fp32 and depth_to_space in int8
        assert depth_to_space not in int16  # no 16x8 DEPTH_TO_SPACE kernel
    for passes in (fp32, int8, int16):  # every target: the crash fixes and the pad lever
        assert {"constants_to_initializers", "reflect_pad_as_slices"} <= set(passes)
    assert set(PASS_TARGETS) <= set(DEFAULT_ONNX_PASSES)
    exact = ExportConfig(model_ref="x", out_dir=Path("out"), targets=(Target.INT8,),
                         target_passes=((Target.INT8, ("constants_to_initializers",)),))
    assert exact.passes_for(Target.INT8) == ("constants_to_initializers",)


def test_prelu_as_leaky_relu_is_exact_in_float_and_uses_no_relu(tmp_path):
    path = _onnx(PreluShuffleNet(), tmp_path / "prelu.onnx")
    model = onnx.load(str(path))
    rewritten = apply_passes(onnx.load(str(path)), ("prelu_as_leaky_relu",))
    ops = [n.op_type for n in rewritten.graph.node]
    assert "PRelu" not in ops and "Relu" not in ops  # no int8 RELU/PRELU kernel in XNNPACK
    assert ops.count("LeakyRelu") == 1
    np.testing.assert_allclose(_run(rewritten, _image()), _run(model, _image()), atol=1e-5)
    used = {name for node in rewritten.graph.node for name in node.input}
    assert all(init.name in used for init in rewritten.graph.initializer)  # no dead slope


def test_equal_slopes_become_one_leaky_relu(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.PReLU(4))  # all four 0.25
    path = _onnx(net, tmp_path / "equal.onnx")
    for name in ("prelu_as_relu", "prelu_as_leaky_relu"):
        rewritten = apply_passes(onnx.load(str(path)), (name,))
        assert [n.op_type for n in rewritten.graph.node] == ["Conv", "LeakyRelu"]
        np.testing.assert_allclose(_run(rewritten, _image()),
                                   _run(onnx.load(str(path)), _image()), atol=1e-6)


def test_leaky_base_slope_stays_where_xnnpack_runs_int8_leaky_relu(tmp_path):
    # XNNPACK left an int8 LEAKY_RELU of slope 0.004 outside; a tiny shared slope is
    # written with a base slope of LEAKY_SLOPES[0] and stays exact
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.PReLU(4, init=0.001))
    path = _onnx(net, tmp_path / "tiny.onnx")
    rewritten = apply_passes(onnx.load(str(path)), ("prelu_as_leaky_relu",))
    alphas = [a.f for n in rewritten.graph.node if n.op_type == "LeakyRelu" for a in n.attribute]
    assert alphas == [pytest.approx(LEAKY_SLOPES[0])]
    np.testing.assert_allclose(_run(rewritten, _image()), _run(onnx.load(str(path)), _image()),
                               atol=1e-6)


def test_pixel_shuffle_becomes_one_dcr_depth_to_space_exactly(tmp_path):
    path = _onnx(PreluShuffleNet(), tmp_path / "shuffle.onnx")
    model = onnx.load(str(path))
    modes = [a.s for n in model.graph.node if n.op_type == "DepthToSpace" for a in n.attribute
             if a.name == "mode"]
    assert modes == [b"CRD"]  # torch's PixelShuffle
    rewritten = apply_passes(onnx.load(str(path)), ("pixel_shuffle_as_depth_to_space",))
    modes = [a.s for n in rewritten.graph.node if n.op_type == "DepthToSpace"
             for a in n.attribute if a.name == "mode"]
    assert modes == [b"DCR"]  # what onnx2tf writes as one DEPTH_TO_SPACE
    np.testing.assert_array_equal(_run(rewritten, _image()), _run(model, _image()))


def test_pixel_shuffle_of_a_conv_output_used_twice_is_left_alone(tmp_path):
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 12, 3, padding=1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = self.conv(x)
            return nn.functional.pixel_shuffle(y, 2), y

    path = _onnx(Twice(), tmp_path / "twice.onnx")
    _, applied = apply_passes_reporting(onnx.load(str(path)),
                                        ("pixel_shuffle_as_depth_to_space",))
    assert applied == ()  # permuting the conv would change its other output


def test_relu_nothing_absorbs_becomes_relu_on_a_one_by_one_max_pool_exactly(tmp_path):
    path = _onnx(ConcatReluNet(), tmp_path / "concat_relu.onnx")
    model = onnx.load(str(path))
    rewritten = apply_passes(onnx.load(str(path)), ("standalone_relu_as_max_pool",))
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops.count("Relu") == 3 and ops.count("MaxPool") == 2  # not the one after a conv
    pooled = {n.output[0] for n in rewritten.graph.node if n.op_type == "MaxPool"}
    relus = [n for n in rewritten.graph.node if n.op_type == "Relu"]
    assert sum(r.input[0] in pooled for r in relus) == 2
    np.testing.assert_array_equal(_run(rewritten, _image()), _run(model, _image()))


@pytest.mark.slow
def test_int8_relus_on_concatenations_run_inside_xnnpack(tmp_path):
    config = ExportConfig(model_ref="concat_relu", module=ConcatReluNet().eval(),
                          out_dir=tmp_path / "out", input_shapes=((1, 3, SIZE, SIZE),),
                          input_names=("image",), targets=(Target.INT8,), calib_samples=8,
                          verify_samples=2, int8_alternatives=False)
    result = run_export(config)
    int8 = json.loads(result.metadata_path.read_text())["artifacts"][0]
    assert "standalone_relu_as_max_pool" in int8["onnx"]["rewrites"]
    assert "RELU" not in int8["graph"]["op_histogram"]
    assert int8["graph"]["op_histogram"]["MAX_POOL_2D"] == 2
    assert int8["graph"]["cpu_delegate"]["partitions"] == 1
    assert int8["verification"]["outputs"][0]["snr_db"] > 25


class UnbiasedVarNet(nn.Module):
    """naoto0804/pytorch-AdaIN's calc_mean_std: torch.onnx writes `.var()` as the mean of
    squares x N x 1/(N - 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(1, 3, -1)
        return x / (flat.var(dim=2) + 1e-5).sqrt().reshape(1, 3, 1, 1)


def test_var_times_n_over_n_minus_one_becomes_one_multiplication(tmp_path):
    import onnxsim  # the export simplifies before its rewrites: N becomes a constant

    model, _ = onnxsim.simplify(onnx.load(str(_onnx(UnbiasedVarNet(), tmp_path / "v.onnx"))))
    rewritten, applied = apply_passes_reporting(
        onnx.load_from_string(model.SerializeToString()),
        ("constants_to_initializers", "fold_scalar_multiplications"))
    assert "fold_scalar_multiplications" in applied
    ops = [n.op_type for n in rewritten.graph.node]
    before = [n.op_type for n in model.graph.node]
    assert ops.count("Mul") + ops.count("Div") == before.count("Mul") + before.count("Div") - 1
    factors = [float(onnx.numpy_helper.to_array(i)) for i in rewritten.graph.initializer
               if i.name.endswith("_folded_factor")]
    assert factors == [pytest.approx(SIZE * SIZE / (SIZE * SIZE - 1))]
    np.testing.assert_allclose(_run(rewritten, _image()), _run(model, _image()), rtol=1e-5)


def test_only_passes_that_changed_the_graph_are_reported(tmp_path):
    path = _onnx(PreluShuffleNet(), tmp_path / "net.onnx")
    _, applied = apply_passes_reporting(onnx.load(str(path)), DEFAULT_ONNX_PASSES)
    assert "reflect_pad_as_slices" not in applied  # no reflection pad in this net
    assert "decompose_instance_norm" not in applied
    assert {"prelu_as_leaky_relu", "pixel_shuffle_as_depth_to_space"} <= set(applied)
    assert "prelu_as_relu" not in applied  # the PReLU was gone by then


def _plan(net: nn.Module, tmp_path: Path):
    path = _onnx(net, tmp_path / "raw.onnx")
    raw = OnnxArtifact(path=path, opset=17, input_names=("image",), output_names=("output",),
                       op_types=())
    config = ExportConfig(model_ref="x", out_dir=tmp_path / "out", targets=ALL_TARGETS)
    return plan_graphs(raw, config, tmp_path)


def test_targets_whose_graphs_come_out_alike_share_one(tmp_path):
    plan = _plan(PlainNet(), tmp_path)  # nothing for any target-specific pass to do
    assert len(plan.graphs) == 1 and plan.main.targets == ALL_TARGETS
    assert plan.main.file == "model.onnx"
    assert len(set(plan.rewrites.values())) == 1


def test_a_prelu_net_gets_three_graphs_float_int8_int16x8(tmp_path):
    plan = _plan(PreluShuffleNet(), tmp_path)
    assert [g.targets for g in plan.graphs] == [
        (Target.FP32, Target.FP16, Target.DYNAMIC), (Target.INT8,), (Target.INT16X8,)]
    assert [g.file for g in plan.graphs] == ["model.onnx", "model_int8.onnx",
                                             "model_int16x8.onnx"]
    ops = [set(g.onnx.op_types) for g in plan.graphs]
    assert "PRelu" in ops[0] and "LeakyRelu" in ops[1] and "Relu" in ops[2]
    assert "prelu_as_leaky_relu" in plan.rewrites[Target.INT8]
    assert "pixel_shuffle_as_depth_to_space" not in plan.rewrites[Target.INT16X8]
    line = rewrites_line(plan)
    assert "3 graphs" in line
    assert "int8: prelu_as_leaky_relu, pixel_shuffle_as_depth_to_space;" in line


class Progress:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str, str]] = []

    def stage_started(self, number: int, name: str) -> None:
        pass

    def stage_finished(self, number: int, name: str, seconds: float, detail: str) -> None:
        self.lines.append((number, name, detail))

    def warn(self, message: str) -> None:
        pass


@pytest.mark.slow
def test_export_converts_each_graph_once_and_records_what_each_file_got(tmp_path):
    progress = Progress()
    config = ExportConfig(model_ref="prelu_shuffle", module=PreluShuffleNet().eval(),
                          out_dir=tmp_path / "out", input_shapes=((1, 3, SIZE, SIZE),),
                          input_names=("image",),
                          targets=(Target.FP32, Target.FP16, Target.INT8, Target.INT16X8),
                          calib_samples=8, verify_samples=2)
    result = run_export(config, progress)
    assert not result.failed
    metadata = json.loads(result.metadata_path.read_text())
    graphs = metadata["onnx"]["graphs"]
    assert [g["targets"] for g in graphs] == [["tflite-fp32", "tflite-fp16"], ["tflite-int8"],
                                              ["tflite-int16x8"]]
    for graph in graphs:
        assert (result.out_dir / graph["file"]).is_file() and graph["onnx2tf_seconds"] > 0
    artifacts = {a["target"]: a for a in metadata["artifacts"]}
    histogram = {t: a["graph"]["op_histogram"] for t, a in artifacts.items()}
    assert "PRELU" in histogram["tflite-fp32"] and "PRELU" in histogram["tflite-fp16"]
    assert "PRELU" not in histogram["tflite-int8"] and "RELU" not in histogram["tflite-int8"]
    assert "PRELU" not in histogram["tflite-int16x8"]
    assert histogram["tflite-int8"]["DEPTH_TO_SPACE"] == 1
    assert "DEPTH_TO_SPACE" not in histogram["tflite-int16x8"]
    assert "TRANSPOSE" not in histogram["tflite-fp32"]
    int8 = artifacts["tflite-int8"]
    assert int8["graph"]["cpu_delegate"] == {"name": "XNNPACK", "partitions": 1,
                                             "ops_outside": {}}
    assert int8["onnx"]["file"] == "model_int8.onnx"
    assert "prelu_as_leaky_relu" in int8["onnx"]["rewrites"]
    assert "reflect_pad_as_slices" not in int8["onnx"]["rewrites"]  # changed nothing here
    assert artifacts["tflite-fp32"]["onnx"]["file"] == "model.onnx"
    assert artifacts["tflite-fp32"]["verification"]["outputs"][0]["max_abs_error"] < 1e-5
    lines = {number: detail for number, name, detail in progress.lines
             if not name.startswith(" ")}
    assert "int8: prelu_as_leaky_relu, pixel_shuffle_as_depth_to_space;" in lines[3]
    assert "3 SavedModels" in lines[4] and "(int16x8)" in lines[4]
