"""Input and output tensors follow forward()'s order in every target (issue 14).

The SavedModel signature is keyed by name, so the converter listed `forward(photo, art)`'s
inputs as (art, photo): an app feeding tensors by position swapped the images silently.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mobilize.contract.specs import ValueRange
from mobilize.contract.tflite_runner import dequantize, quantize
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.inspect_tflite import inspect_graph
from mobilize.exporter.pipeline import run_export
from mobilize.exporter.tflite_order import TensorOrder, in_forward_order

SIZE = 32
TARGETS = (Target.FP32, Target.INT8, Target.INT16X8)
MIN_PSNR_DB = {Target.FP32: 60.0, Target.INT8: 25.0, Target.INT16X8: 40.0}
SWAPPED_MAX_PSNR_DB = 22.0  # measured ~18.7 dB with the images swapped


class PhotoAndArt(nn.Module):
    """Two inputs whose names sort the other way round; each goes through its own conv, so
    swapping them changes the output a lot."""

    def __init__(self) -> None:
        super().__init__()
        self.photo_conv = nn.Conv2d(3, 3, 3, padding=1)
        self.art_conv = nn.Conv2d(3, 3, 1)

    def forward(self, photo: torch.Tensor, art: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.photo_conv(photo) + 0.3 * self.art_conv(art))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    module = PhotoAndArt().eval()
    config = ExportConfig(
        model_ref="photo_and_art", module=module,
        out_dir=tmp_path_factory.mktemp("io_order"), targets=TARGETS,
        input_shapes=((1, 3, SIZE, SIZE),) * 2, input_names=("photo", "art"),
        input_ranges=(ValueRange(0.0, 1.0),), output_range=ValueRange(-1.0, 1.0),
        calib_samples=8, verify_samples=1)
    return run_export(config), module


def _by_position(content: bytes, arrays: list[np.ndarray]) -> np.ndarray:
    """Feed `arrays` (NCHW) to input 0, 1, ... as an app does; output 0 back in NCHW."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    for detail, array in zip(interpreter.get_input_details(), arrays, strict=True):
        interpreter.set_tensor(detail["index"], quantize(array.transpose(0, 2, 3, 1), detail))
    interpreter.invoke()
    detail = interpreter.get_output_details()[0]
    return dequantize(interpreter.get_tensor(detail["index"]), detail).transpose(0, 3, 1, 2)


def _psnr(reference: np.ndarray, other: np.ndarray, peak: float = 2.0) -> float:
    return float(10 * np.log10(peak ** 2 / np.mean((reference - other) ** 2)))


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.value)
def test_inputs_fed_by_position_follow_forward_order(exported, target: Target) -> None:
    result, module = exported
    content = result.paths[target].read_bytes()
    rng = np.random.default_rng(3)
    photo, art = (rng.uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32) for _ in range(2))
    with torch.no_grad():
        want = module(torch.from_numpy(photo), torch.from_numpy(art)).numpy()
    got = _by_position(content, [photo, art])
    assert _psnr(want, got) > MIN_PSNR_DB[target]
    # the test can tell: the images swapped lose the picture
    assert _psnr(want, _by_position(content, [art, photo])) < SWAPPED_MAX_PSNR_DB
    artifact = next(a for a in json.loads(result.metadata_path.read_text())["artifacts"]
                    if a["target"] == target.value)
    assert [t["name"] for t in artifact["inputs"]] == ["photo", "art"]


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.value)
def test_signature_names_are_kept(exported, target: Target) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=exported[0].paths[target].read_bytes())
    assert list(interpreter.get_signature_list()) == ["serving_default"]
    runner = interpreter.get_signature_runner()
    assert set(runner.get_input_details()) == {"photo", "art"}
    assert set(runner.get_output_details()) == {"output"}


@pytest.fixture(scope="module")
def two_output_tflite(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import tensorflow as tf

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32, "x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"b": x * 2.0, "a": x + 1.0}

    net = Net()
    path = tmp_path_factory.mktemp("two_outputs") / "saved_model"
    tf.saved_model.save(net, str(path), signatures={"serving_default": net.serve})
    return tf.lite.TFLiteConverter.from_saved_model(str(path)).convert()


def _output_names(content: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    by_index = {d["index"]: name for name, d in runner.get_output_details().items()}
    return [by_index[d["index"]] for d in interpreter.get_output_details()]


def test_outputs_are_put_in_the_order_asked(two_output_tflite: bytes) -> None:
    converters = _output_names(two_output_tflite)
    wanted = tuple(reversed(converters))
    reordered = in_forward_order(two_output_tflite, TensorOrder(("x",), wanted))
    assert _output_names(reordered) == list(wanted)
    assert inspect_graph(reordered).outputs[0].name == wanted[0]
    assert len(reordered) == len(two_output_tflite)  # a permutation in place, nothing else


def test_an_order_naming_other_tensors_changes_nothing(two_output_tflite: bytes) -> None:
    unchanged = in_forward_order(two_output_tflite, TensorOrder(("y",), ("b", "c")))
    assert unchanged == two_output_tflite

