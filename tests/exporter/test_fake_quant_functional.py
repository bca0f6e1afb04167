"""The fake quantization of arithmetic a model writes in forward() itself (issue 15).

AdaIN stylizers compute their statistics with functions (`content.var(...)`, `.sqrt()`),
not modules; before exporter/fake_quant_functional.py the student was left unrounded there,
exactly where its int8 file loses most."""

from __future__ import annotations

import torch

from mobilize.exporter.fake_quant import insert_fake_quant
from tests.exporter.families import FAMILIES

SIZE = 32

# adain(): per input the mean, var(unbiased=False) as torch.onnx writes it, + eps, and the
# std as RSQRT then v * RSQRT (sqrt_as_rsqrt); then (content - mean) * RSQRT (the division
# as div_by_sqrt_as_rsqrt writes it), * the style's std, + the style's mean.
STATISTICS = ["mean", "var.mean", "var.centered", "var.square", "var.mean_square", "add",
              "rsqrt", "sqrt"]
ADAIN_POINTS = [*STATISTICS, *STATISTICS, "sub", "mul", "mul", "add"]


def _adain_student():
    model = FAMILIES["adain"].build()
    torch.manual_seed(1)
    batch = (torch.rand(4, 3, SIZE, SIZE), torch.rand(4, 3, SIZE, SIZE))
    quantized = insert_fake_quant(model, (batch[0][:1], batch[1][:1]), [(0.0, 1.0)] * 2)
    quantized.calibrate(iter([batch]))
    return model, quantized, batch


def test_adain_statistics_round_at_each_tensor_of_the_int8_graph():
    model, quantized, batch = _adain_student()
    assert quantized.functional is not None
    names = [point.name.split(".", 2)[2] for point in quantized.functional.points]
    assert names == ADAIN_POINTS
    assert all(point.spatial is not None for point in quantized.functional.points)  # calibrated
    # the statistics are (N, C, 1, 1): their ranges are min/max over samples, not quantiles
    assert [p.spatial for p in quantized.functional.points[:2]] == [False, False]
    assert quantized.functional.points[2].spatial  # x - mean is an image

    with torch.no_grad():
        quantized.set_rounding(True)
        rounded = model(*batch)
        for point in quantized.functional.points:
            point.rounding = False
        without = model(*batch)
    # the functional roundings change the output: they were missing before
    assert float((rounded - without).abs().max()) > 1e-3


def test_gradients_pass_the_functional_roundings_and_strip_restores_the_forward():
    reference = FAMILIES["adain"].build()
    model, quantized, batch = _adain_student()
    quantized.set_rounding(True)
    model(*batch).mean().backward()
    first = model.encoder[0].parametrizations.weight.original  # reached through AdaIN
    assert first.grad is not None and float(first.grad.abs().sum()) > 0
    plain = quantized.strip()
    assert "forward" not in vars(plain)  # the wrapped forward is gone
    with torch.no_grad():
        assert torch.equal(plain(*batch), reference(*batch))


def test_a_residual_sum_rounds_once():
    model = FAMILIES["cyclegan"].build()  # two blocks returning x + self.body(x)
    quantized = insert_fake_quant(model, (torch.rand(1, 3, SIZE, SIZE) * 2 - 1,), [(-1.0, 1.0)])
    assert quantized.functional is not None
    assert [p.name.split(".", 2)[2] for p in quantized.functional.points] == ["add", "add"]
    blocks = {name for name, module in model.named_modules() if type(module).__name__
              == "ResnetBlock"}
    # the blocks' own output roundings stand down for the functional add
    standing_down = {q.name for q in quantized.quantizers if not q.quantize}
    assert standing_down == blocks


def test_rsqrt_rounds_on_the_range_the_int8_file_caps_it_to():
    """A flat style image has variance 0 in every channel: its RSQRT is 1/sqrt(eps) = 316,
    the calibrated top. The file caps RSQRT at 1/sqrt(its input's step)
    (tflite_activations._cap_rsqrt); the student must round on that grid too, or it
    rounds the live channels' 1/std far more coarsely than the file does."""
    model = FAMILIES["adain"].build()
    torch.manual_seed(1)
    # inputs on 0..4: variances up to ~0.04, so their int8 step (1.5e-4) is well above eps
    content = torch.rand(4, 3, SIZE, SIZE) * 4
    style = torch.rand(4, 3, SIZE, SIZE) * 4
    style[0] = 2.0  # flat
    quantized = insert_fake_quant(model, (content[:1], style[:1]), [(0.0, 4.0)] * 2)
    quantized.calibrate(iter([(content, style)]))
    assert quantized.functional is not None
    points = quantized.functional.points
    capped = 0
    for index, point in enumerate(points):
        if not point.name.endswith(".rsqrt"):
            continue
        source = points[index - 1]  # the variance + eps it is the RSQRT of
        assert source.name.endswith(".add")
        step, _ = source.params()
        scale, zero_point = point.params()
        cap = 1.0 / step ** 0.5
        if float(point.high) > cap:
            capped += 1
            assert zero_point == -128 and abs(scale * 255 - cap) < 1e-3 * cap
        else:
            assert abs(scale * 255 - float(point.high)) < 1e-3 * float(point.high)
    assert capped >= 1  # the style's RSQRT, calibrated up to 1/sqrt(eps)


def test_instance_norm_rsqrt_is_capped_by_its_variance_step():
    from torch import nn

    from mobilize.exporter.fake_quant_quantizers import QuantInstanceNorm

    norm = QuantInstanceNorm(nn.InstanceNorm2d(4), "norm")
    x = torch.randn(2, 4, 16, 16)
    x[1, 2] = 0.0  # a channel flat in one image: its RSQRT is 1/sqrt(eps)
    for quant in norm.q.values():
        quant.collect()
    norm(x)
    for quant in norm.q.values():
        quant.settle()
    step, _ = norm.q["var_eps"].params()
    scale, zero_point = norm.q["rsqrt"].params()
    assert float(norm.q["rsqrt"].high) > 300
    assert zero_point == -128 and abs(scale * 255 - step ** -0.5) < 1e-3 * step ** -0.5
