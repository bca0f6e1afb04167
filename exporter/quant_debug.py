"""Per-layer int8 error report (`--debug-quant`): which layers lose the picture.

TensorFlow's QuantizationDebugger converts the model once more with a NumericVerify op after
every quantized op. Each NumericVerify runs the op's float twin on the *dequantized int8
inputs* and records the difference, so a layer's figure is the error that this layer adds,
not the error it inherits. We report it the way TensorFlow's guide does: RMSE divided by the
layer's output scale. Pure rounding to a grid of step `scale` gives sqrt(1/12) ~ 0.29; a layer
well above that (the guide's cut-off is 0.7) loses more than rounding: clipping, a range that
several channels share badly, or an op whose int8 kernel is coarse (SQRT, DIV, RSQRT).
The exported file's own ranges (exporter/int8_ranges.py) are the ones debugged.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from mobilize.errors import ConversionError
from mobilize.exporter.int8_ranges import (
    DEFAULT_SIGNATURE,
    Dataset,
    RangeOptions,
    Sample,
    int8_converter,
    quantized_with_options,
)

ROUNDING_RMSE_OVER_SCALE = math.sqrt(1 / 12)  # uniform rounding error on a grid of one step
# TensorFlow's guide flags layers above this (rounding plus a large margin).
DEFAULT_KEEP_THRESHOLD = 0.7


@dataclass(frozen=True)
class LayerQuantError:
    """The error one quantized op adds, averaged over the debug samples."""

    tensor_name: str  # the op's output tensor: the name denylisted_nodes takes
    op_name: str  # TFLite builtin, e.g. CONV_2D, MEAN, RSQRT
    tensor_index: int
    scale: float
    zero_point: int
    rmse: float
    mean_error: float
    max_abs_error: float
    num_elements: int

    @property
    def rmse_over_scale(self) -> float:
        """NaN when the debugger got NaN differences (the op's float twin met an int8 input
        outside its domain, e.g. a variance rounded below zero): treated as the worst."""
        return self.rmse / self.scale if self.scale > 0 else math.inf

    @property
    def severity(self) -> float:
        ratio = self.rmse_over_scale
        return math.inf if math.isnan(ratio) else ratio

    def to_json(self) -> dict[str, Any]:
        return {"tensor": self.tensor_name, "op": self.op_name, "tensor_index": self.tensor_index,
                "scale": self.scale, "zero_point": self.zero_point, "rmse": _finite(self.rmse),
                "rmse_over_scale": _finite(self.rmse_over_scale),
                "mean_error": _finite(self.mean_error),
                "max_abs_error": _finite(self.max_abs_error),
                "num_elements": self.num_elements}


def _finite(value: float) -> float | None:
    # JSON has no NaN or infinity.
    return value if math.isfinite(value) else None


def debug_quantization(source: Path | str | Any, representative_dataset: Dataset, *,
                       ranges: RangeOptions | None = None,
                       signature_key: str = DEFAULT_SIGNATURE) -> list[LayerQuantError]:
    """Per-layer int8 error, worst first.

    source: a float SavedModel folder (converted here with int8 ops only, per-channel
    weights: what `--target tflite-int8` does), or a fresh `tf.lite.TFLiteConverter` set up
    for int8 with its representative dataset (the debugger changes its settings, so do not
    reuse it). representative_dataset yields one sample per call, as a dict keyed by
    signature input name (what the converter takes) or a list in the model's input order.
    ranges: with a SavedModel folder, debug the model `quantize_with_ranges` makes with
    these options (the one exported), instead of the converter's min/max ranges.
    """
    import tensorflow as tf

    try:
        if ranges is not None:
            if not isinstance(source, (str, Path)):
                raise ConversionError("range options need a SavedModel folder as the source",
                                      hint="pass the SavedModel path, not a converter")
            debug_model = quantized_with_options(source, representative_dataset, ranges,
                                                 signature_key, numeric_verify=True)
            debugger = tf.lite.experimental.QuantizationDebugger(
                quant_debug_model_content=debug_model, debug_dataset=_unused_dataset)
        else:
            converter = (int8_converter(source, representative_dataset, signature_key)
                         if isinstance(source, (str, Path)) else source)
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=_unused_dataset)
            debug_model = debugger.quant_model
        order = _input_order(debug_model, signature_key)
        debugger._data_gen = _as_lists(representative_dataset, order)  # noqa: SLF001
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
    except ConversionError:
        raise
    except Exception as error:  # converter and interpreter raise many types; one message
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConversionError(
            f"the quantization debugger failed: {first_line}",
            hint="the int8 conversion itself must succeed first; try --target tflite-int8 "
            "without --debug-quant to see the converter's error") from error
    layers = [_layer(row) for row in csv.DictReader(io.StringIO(dump.getvalue()))]
    return sorted(layers, key=lambda layer: layer.severity, reverse=True)


def _unused_dataset() -> Iterator[Sample]:
    # The debugger stores this before we know the model's input order; replaced before run().
    raise AssertionError("replaced before run()")
    yield  # pragma: no cover


def _input_order(model: bytes, signature_key: str) -> list[str] | None:
    """Signature input names in the order of the interpreter's input tensors."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    signatures = interpreter.get_signature_list()
    if signature_key not in signatures:
        return None
    by_index = {int(detail["index"]): name for name, detail in
                interpreter.get_signature_runner(signature_key).get_input_details().items()}
    return [by_index[int(detail["index"])] for detail in interpreter.get_input_details()]


def _as_lists(dataset: Dataset, order: list[str] | None) -> Dataset:
    def generate() -> Iterator[list[np.ndarray]]:
        for sample in dataset():
            if isinstance(sample, Mapping):
                if order is None:
                    raise ConversionError(
                        "samples are keyed by input name but the model has no signature",
                        hint="give the samples as a list in the model's input order")
                yield [np.asarray(sample[name], dtype=np.float32) for name in order]
            else:
                yield [np.asarray(array, dtype=np.float32) for array in sample]

    return generate


def _layer(row: dict[str, str]) -> LayerQuantError:
    return LayerQuantError(
        tensor_name=row["tensor_name"], op_name=row["op_name"],
        tensor_index=int(row["tensor_idx"]), scale=float(row["scale"]),
        zero_point=int(float(row["zero_point"])),
        rmse=math.sqrt(max(float(row["mean_squared_error"]), 0.0)),
        mean_error=float(row["mean_error"]), max_abs_error=float(row["max_abs_error"]),
        num_elements=int(float(row["num_elements"])))


def layers_to_keep(layers: Sequence[LayerQuantError],
                   threshold: float = DEFAULT_KEEP_THRESHOLD) -> list[str]:
    """Output tensor names of the layers that lose more than rounding (worst first): the ones
    to keep at higher precision (int16 or float) or to rewrite."""
    return [layer.tensor_name for layer in layers if layer.severity > threshold]


def to_json(layers: Sequence[LayerQuantError],
            threshold: float = DEFAULT_KEEP_THRESHOLD) -> dict[str, Any]:
    """The `quant_debug` block of metadata.json."""
    return {
        "metric": "rmse_over_scale",
        "measured_by": "tf.lite.experimental.QuantizationDebugger (per-layer NumericVerify)",
        "rounding_only": ROUNDING_RMSE_OVER_SCALE,
        "keep_threshold": threshold,
        "keep_at_higher_precision": layers_to_keep(layers, threshold),
        "layers": [layer.to_json() for layer in layers],
    }


def render_table(layers: Sequence[LayerQuantError], top: int | None = 15,
                 threshold: float = DEFAULT_KEEP_THRESHOLD) -> Table:
    shown = list(layers if top is None else layers[:top])
    title = (f"int8 error per layer, worst first ({len(shown)} of {len(layers)}; "
             f"rounding alone = {ROUNDING_RMSE_OVER_SCALE:.2f})")
    caption = (f"keep: RMSE/scale above {threshold:g}, a layer to keep at higher precision "
               "(int16 or float) or to rewrite")
    table = Table(title=title, caption=caption)
    for column, justify in (("#", "right"), ("op", "left"), ("tensor", "left"),
                            ("RMSE/scale", "right"), ("scale", "right"),
                            ("max err", "right"), ("keep", "left")):
        # Figures stay whole on a narrow terminal; the tensor name folds instead.
        table.add_column(column, justify=justify,  # type: ignore[arg-type]
                         no_wrap=column != "tensor", overflow="fold",
                         min_width=22 if column == "tensor" else None)
    for rank, layer in enumerate(shown, 1):
        keep = layer.severity > threshold
        ratio = f"{layer.rmse_over_scale:.2f}" if math.isfinite(layer.rmse_over_scale) else "NaN"
        table.add_row(str(rank), layer.op_name, _short(layer.tensor_name),
                      f"[bold red]{ratio}[/]" if keep else ratio,
                      f"{layer.scale:.3g}", f"{layer.max_abs_error:.3g}",
                      "yes" if keep else "")
    return table


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]
