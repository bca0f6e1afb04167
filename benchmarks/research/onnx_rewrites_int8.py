"""Research: ONNX rewrites tried to keep InstanceNorm's picture through full-integer int8.

Not shipped and used by no default (the production decomposition and sqrt_as_rsqrt are in
exporter/onnx_norm.py); kept with its test so the measured levers can be re-run.


Why int8 loses InstanceNorm: TFLite quantizes each activation tensor with one scale. The
per-image variance of an InstanceNorm input is a (1, C, 1, 1) tensor whose channels can lie
orders of magnitude apart in a trained net (a filter with a small norm gives a quiet
channel). One int8 scale for all of them rounds the quiet channels' variance to zero or one
step, and RSQRT of that is far off: the quantization debugger ranks those RSQRT/MEAN ops
worst by far (exporter/quant_debug.py).

InstanceNorm does not care how loud a channel is: IN(a * x) = IN(x) for a > 0 per channel,
once its epsilon is scaled by 1/a^2. So `equalize_instance_norm_inputs` divides each output
channel of the convolution that feeds an InstanceNorm by that channel's typical standard
deviation (from calibration samples run through onnxruntime, or, without samples, by the
filter's L2 norm) and drops the convolution's bias, which the mean subtraction removes
anyway. Every channel then has about the same variance, and one int8 scale suits all. The
float output is the same (tested with onnxruntime). The InstanceNorm is then written as
ReduceMean/Sub/Mul/ReduceMean/Add/Sqrt/Div/Mul/Add with a per-channel epsilon, which also
avoids SQUARED_DIFFERENCE (no int16 kernel, so int16x8 runs). `sqrt_as_rsqrt` does the same
for AdaIN's style standard deviation: int16x8 has no SQRT, so it is written through RSQRT.

Measured (docs/benchmarks.md, "int8 levers tried"): equalization adds 1.5-2.6 dB to int8
PSNR of Johnson nets at 64x64 with the converter's ranges, but nothing at 256x256 on a trained
Johnson (15.4 -> 14.3 dB; with robust ranges 23.6 -> 22.9 dB); on the random-init inline
Johnson at 256x256 with calibration stds, 34.8 -> 36.6 dB PSNR (CycleGAN 33.2 -> 34.1), with
filter norms instead nothing. The two-stage form adds ops without a gain (so DIRECT is the
default; onnx_rewrites.decompose_instance_norm is this decomposition with its defaults). The
robust activation ranges of `mobilize.exporter.quant_debug.quantize_with_ranges` are the lever that
counts. What this module brings for sure: with `sqrt_as_rsqrt` the AdaIN stylizer's int16x8
converts and runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mobilize.exporter.onnx_graph import constants_to_initializers, opset_of
from mobilize.exporter.onnx_norm import consumers_of as _consumers
from mobilize.exporter.onnx_norm import drop_unused_initializers as _drop_unused_initializers
from mobilize.exporter.onnx_norm import epsilon_of as _epsilon
from mobilize.exporter.onnx_norm import (
    normalize_centered,
    sqrt_as_rsqrt,  # noqa: F401 - the tests' reference
)

Feeds = Mapping[str, np.ndarray]


class NormForm(StrEnum):
    """How the normalization divides by the standard deviation.

    DIRECT: centered * rsqrt(var + eps), var = mean(centered^2). The variance's range across
    images and channels is the square of the amplitude's, and RSQRT of an int8 variance near
    zero is far off.
    TWO_STAGE: first bring every channel to about unit amplitude with r = 1 / mean|centered|
    (any error in r cancels below), then y = centered * r, out = y * rsqrt(mean(y^2) +
    eps * r^2): the same value in float, but the variance int8 has to hold now lies near 1.
    """

    DIRECT = "direct"
    TWO_STAGE = "two_stage"


class MeanOp(StrEnum):
    """How the per-image mean over H, W is written (TFLite MEAN or AVERAGE_POOL_2D)."""

    REDUCE_MEAN = "ReduceMean"
    GLOBAL_AVERAGE_POOL = "GlobalAveragePool"

TINY_AMPLITUDE = 1e-12  # keeps 1 / mean|centered| finite for an all-constant channel
MIN_CHANNEL_SCALE = 1e-6  # a dead channel (all-zero filter) keeps scale 1


def rewrite_for_int8(model: onnx.ModelProto,
                     calibration: Sequence[Feeds] | None = None,
                     mean_op: MeanOp = MeanOp.REDUCE_MEAN,
                     form: NormForm = NormForm.DIRECT) -> onnx.ModelProto:
    """Equalize the channels feeding each InstanceNormalization, then decompose it.

    calibration: a few NCHW input samples (what PyTorch takes) to measure each channel's
    standard deviation; without them the filters' L2 norms stand in for it.
    """
    model = constants_to_initializers(model)
    epsilons = _equalize_instance_norm_inputs(model, calibration)
    model = decompose_instance_norm_per_channel_eps(model, epsilons, mean_op, form)
    model = sqrt_as_rsqrt(model)
    onnx.checker.check_model(model)
    return model





def _equalizable_convs(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.NodeProto]]:
    """(Conv, InstanceNormalization) pairs where the Conv's weights are initializers and
    its output feeds only that InstanceNorm, so rescaling it changes nothing else."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers = _consumers(graph)
    initializers = {init.name for init in graph.initializer}
    graph_outputs = {out.name for out in graph.output}
    pairs = []
    for node in graph.node:
        if node.op_type != "InstanceNormalization":
            continue
        conv = producers.get(node.input[0])
        if (conv is None or conv.op_type != "Conv" or conv.input[1] not in initializers
                or len(consumers.get(conv.output[0], [])) != 1
                or conv.output[0] in graph_outputs):
            continue
        pairs.append((conv, node))
    return pairs


def _channel_stds(model: onnx.ModelProto, tensors: Sequence[str],
                  calibration: Sequence[Feeds]) -> dict[str, np.ndarray]:
    """Per-channel standard deviation over H, W, averaged (as variance) over the samples."""
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {out.name for out in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    session = onnxruntime.InferenceSession(probe.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    sums = {name: 0.0 for name in tensors}
    for feeds in calibration:
        values = session.run(list(tensors), {k: np.asarray(v, np.float32)
                                             for k, v in feeds.items()})
        for name, value in zip(tensors, values, strict=True):
            sums[name] = sums[name] + value.var(axis=(2, 3)).mean(axis=0)
    return {name: np.sqrt(total / len(calibration)) for name, total in sums.items()}


def _equalize_instance_norm_inputs(model: onnx.ModelProto,
                                   calibration: Sequence[Feeds] | None) -> dict[str, str]:
    """Divide each output channel of a Conv that feeds an InstanceNorm by that channel's
    standard deviation (or filter norm) and drop its bias, in place. Returns, per
    InstanceNorm output, the initializer holding its epsilon scaled per channel to match:
    the decomposition must use it for the float output to stay the same."""
    graph = model.graph
    pairs = _equalizable_convs(model)
    if not pairs:
        return {}
    initializers = {init.name: init for init in graph.initializer}
    epsilons: dict[str, str] = {}
    stds = (_channel_stds(model, [conv.output[0] for conv, _ in pairs], calibration)
            if calibration else {})
    for conv, norm in pairs:
        weight = numpy_helper.to_array(initializers[conv.input[1]]).astype(np.float32)
        if conv.output[0] in stds:
            scale = stds[conv.output[0]].astype(np.float32)
        else:
            scale = np.sqrt((weight.reshape(weight.shape[0], -1) ** 2).sum(axis=1))
        scale = np.where(scale > MIN_CHANNEL_SCALE, scale, 1.0).astype(np.float32)
        scale = scale / np.float32(np.median(scale))  # keep the overall magnitude
        new_weight = weight / scale.reshape(-1, *([1] * (weight.ndim - 1)))
        weight_name = f"{conv.output[0]}_equalized_weight"
        graph.initializer.append(numpy_helper.from_array(new_weight, weight_name))
        conv.input[1] = weight_name
        if len(conv.input) > 2:  # the bias shifts each channel's mean, which IN removes
            del conv.input[2]
        epsilon = (_epsilon(norm) / scale.astype(np.float64) ** 2).astype(np.float32)
        eps_name = f"{norm.output[0]}_epsilon_per_channel"
        graph.initializer.append(numpy_helper.from_array(epsilon.reshape(1, -1, 1, 1), eps_name))
        epsilons[norm.output[0]] = eps_name
    return epsilons


def decompose_instance_norm_per_channel_eps(
        model: onnx.ModelProto, epsilons: Mapping[str, str] | None = None,
        mean_op: MeanOp = MeanOp.REDUCE_MEAN,
        form: NormForm = NormForm.DIRECT) -> onnx.ModelProto:
    """InstanceNormalization -> (x - mean) / sqrt(mean((x - mean)^2) + eps) * scale + bias,
    with Mul for the square (no SquaredDifference/Pow, which int16x8 cannot run); eps is the
    named per-channel initializer where `epsilons` (by InstanceNorm output) gives one."""
    epsilons = epsilons or {}
    graph = model.graph
    opset = opset_of(model)
    initializers = {init.name: init for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "InstanceNormalization":
            nodes.append(node)
            continue
        x, scale_name, bias_name = node.input
        p = (node.name or node.output[0]).replace("/", "_") + "_int8"
        scale = numpy_helper.to_array(initializers[scale_name]).reshape(-1, 1, 1)
        bias = numpy_helper.to_array(initializers[bias_name]).reshape(-1, 1, 1)
        eps_name = epsilons.get(node.output[0], f"{p}_eps")
        if node.output[0] not in epsilons:
            graph.initializer.append(
                numpy_helper.from_array(np.array(_epsilon(node), np.float32), eps_name))
        graph.initializer.extend([
            numpy_helper.from_array(scale.astype(np.float32), f"{p}_scale"),
            numpy_helper.from_array(bias.astype(np.float32), f"{p}_bias")])
        axes = f"{p}_axes"
        if opset >= 18:  # ReduceMean takes its axes as an input from opset 18 on
            graph.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), axes))

        def reduce_mean(inp: str, out: str, axes: str = axes) -> onnx.NodeProto:
            if mean_op is MeanOp.GLOBAL_AVERAGE_POOL:
                return helper.make_node("GlobalAveragePool", [inp], [out])
            if opset >= 18:
                return helper.make_node("ReduceMean", [inp, axes], [out], keepdims=1)
            return helper.make_node("ReduceMean", [inp], [out], axes=[2, 3], keepdims=1)

        nodes += [
            reduce_mean(x, f"{p}_mean"),
            helper.make_node("Sub", [x, f"{p}_mean"], [f"{p}_centered"]),
        ]
        if form is NormForm.TWO_STAGE:
            graph.initializer.append(
                numpy_helper.from_array(np.array(TINY_AMPLITUDE, np.float32), f"{p}_tiny"))
            nodes += [
                helper.make_node("Abs", [f"{p}_centered"], [f"{p}_abs"]),
                reduce_mean(f"{p}_abs", f"{p}_amplitude"),
                helper.make_node("Add", [f"{p}_amplitude", f"{p}_tiny"], [f"{p}_amp_tiny"]),
                helper.make_node("Reciprocal", [f"{p}_amp_tiny"], [f"{p}_r"]),
                helper.make_node("Mul", [f"{p}_centered", f"{p}_r"], [f"{p}_y"]),
                helper.make_node("Mul", [f"{p}_r", f"{p}_r"], [f"{p}_r2"]),
                helper.make_node("Mul", [f"{p}_r2", eps_name], [f"{p}_eps_y"]),
            ]
            centered, eps_term = f"{p}_y", f"{p}_eps_y"
        else:
            centered, eps_term = f"{p}_centered", eps_name
        nodes += [
            *normalize_centered(reduce_mean, p, centered, eps_term),
            helper.make_node("Mul", [f"{p}_normed", f"{p}_scale"], [f"{p}_scaled"]),
            helper.make_node("Add", [f"{p}_scaled", f"{p}_bias"], [node.output[0]]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(model)
    return model
