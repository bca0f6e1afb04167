"""Per-layer int8 error report (`--debug-quant`): which layers lose the picture.

TensorFlow's QuantizationDebugger converts the model once more with a NumericVerify op after
every quantized op. Each NumericVerify runs the op's float twin on the *dequantized int8
inputs* and records the difference, so a layer's figure is the error that this layer adds,
not the error it inherits. We report it the way TensorFlow's guide does: RMSE divided by the
layer's output scale. Pure rounding to a grid of step `scale` gives sqrt(1/12) ~ 0.29; a layer
well above that (the guide's cut-off is 0.7) loses more than rounding: clipping, a range that
several channels share badly, or an op whose int8 kernel is coarse (SQRT, DIV, RSQRT).

The report names those layers; `selective_quantized_model` converts with them left in float,
a way to confirm that keeping them at higher precision buys the picture back (it is then not
full integer, so it is a diagnosis, not an export target).

`quantize_with_ranges` is the lever the report points to for generators: the converter takes
each activation's range as the min and max over *all* calibration samples, so one unusual
crop (a flat patch that InstanceNorm blows up) widens a range for every image, and more
calibration samples make int8 worse (measured: 8 -> 28.9 dB, 32 -> 21.5 dB, 128 -> 19.6 dB on
a trained Johnson net). It calibrates with the converter, replaces each spatial activation's
range with a quantile over samples of each sample's own min and max, and quantizes with the
converter's own quantizer: still full integer, same ops.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from exporter.config import IoType
from exporter.errors import ConversionError

ROUNDING_RMSE_OVER_SCALE = math.sqrt(1 / 12)  # uniform rounding error on a grid of one step
# TensorFlow's guide flags layers above this (rounding plus a large margin).
DEFAULT_KEEP_THRESHOLD = 0.7
DEFAULT_SIGNATURE = "serving_default"

Sample = Mapping[str, np.ndarray] | Sequence[np.ndarray]
Dataset = Callable[[], Iterable[Sample]]


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
            debug_model = _quantized(source, representative_dataset, ranges, signature_key,
                                     numeric_verify=True)
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


def int8_converter(saved_model: Path | str, representative_dataset: Dataset,
                   signature_key: str = DEFAULT_SIGNATURE) -> Any:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), [signature_key])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


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


def selective_quantized_model(source: Path | str | Any, representative_dataset: Dataset,
                              keep: Sequence[str], *,
                              signature_key: str = DEFAULT_SIGNATURE) -> bytes:
    """The int8 model with the `keep` layers (output tensor names) left in float: a check of
    how much keeping them at higher precision buys. Float inputs and outputs."""
    import tensorflow as tf

    converter = (int8_converter(source, representative_dataset, signature_key)
                 if isinstance(source, (str, Path)) else source)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(keep))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=_unused_dataset, debug_options=options)
    return debugger.get_nondebug_quantized_model()


class RangeEstimator(StrEnum):
    """How an activation's int8 range is taken from the calibration samples."""

    MIN_MAX = "minmax"  # the converter's own: min and max over every sample
    SAMPLE_QUANTILE = "sample-quantile"  # a quantile over samples of each sample's min/max


@dataclass(frozen=True)
class RangeOptions:
    estimator: RangeEstimator = RangeEstimator.SAMPLE_QUANTILE
    # The median of the per-sample extremes: best of 0.5/0.75/0.9/mean at 256x256 on trained
    # Johnson (25.4 dB vs 23.6 at 0.75, 15.4 with min/max) and AdaIN nets (44.6 vs 42.0, 36.8).
    quantile: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile}")


def quantize_with_ranges(saved_model: Path | str, representative_dataset: Dataset,
                         options: RangeOptions = RangeOptions(), io: IoType = IoType.INT8, *,
                         signature_key: str = DEFAULT_SIGNATURE) -> bytes:
    """Full-integer int8 .tflite (per-channel weights) with robust activation ranges.

    representative_dataset yields dicts keyed by signature input name. Ranges of per-image
    statistics (tensors without a spatial extent, e.g. a (1, 1, 1, C) variance) keep the
    min/max over all samples: clipping a variance sends RSQRT far off.
    """
    try:
        return _quantized(saved_model, representative_dataset, options, signature_key, io=io)
    except ConversionError:
        raise
    except Exception as error:  # converter and interpreter raise many types; one message
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConversionError(f"int8 quantization with {options.estimator.value} ranges "
                              f"failed: {first_line}",
                              hint="check that the samples match the model's inputs; the "
                              "converter's own ranges: --target tflite-int8 alone") from error


def _quantized(saved_model: Path | str, dataset: Dataset, options: RangeOptions,
               signature_key: str, io: IoType = IoType.FLOAT,
               numeric_verify: bool = False) -> bytes:
    """Calibrate with the converter, set the ranges, quantize with the converter's quantizer
    (with NumericVerify ops after each layer for the debugger when numeric_verify)."""
    calibrated = _calibrated(saved_model, dataset, signature_key)
    if options.estimator is not RangeEstimator.MIN_MAX:
        extremes = _per_sample_extremes(calibrated, dataset, signature_key)
        calibrated = _with_ranges(calibrated, extremes, options.quantile)
    return _mlir_quantize(calibrated, io, numeric_verify)


def _calibrated(saved_model: Path | str, dataset: Dataset, signature_key: str) -> bytes:
    converter = int8_converter(saved_model, dataset, signature_key)
    converter._experimental_calibrate_only = True  # noqa: SLF001 - the debugger does the same
    return converter.convert()


def _mlir_quantize(calibrated: bytes, io: IoType, numeric_verify: bool = False) -> bytes:
    import tensorflow as tf
    from tensorflow.lite.python import convert

    io_type = {IoType.INT8: tf.int8, IoType.UINT8: tf.uint8, IoType.FLOAT: tf.float32}[io]
    return convert.mlir_quantize(calibrated, input_data_type=io_type, output_data_type=io_type,
                                 enable_numeric_verify=numeric_verify)


DEFAULT_QUANTILE_CHOICES = (0.35, 0.5, 0.75)


@dataclass(frozen=True)
class RangeChoice:
    """The quantile whose int8 model came closest to the float model on validation samples,
    and that model."""

    options: RangeOptions
    model: bytes
    rmse_by_quantile: dict[float, float]


def quantize_choosing_ranges(saved_model: Path | str, calibration: Dataset,
                             validation: Dataset,
                             quantiles: Sequence[float] = DEFAULT_QUANTILE_CHOICES,
                             io: IoType = IoType.INT8, *,
                             signature_key: str = DEFAULT_SIGNATURE) -> RangeChoice:
    """quantize_with_ranges for each quantile; keep the one with the lowest output RMSE
    against the float .tflite on `validation` (samples apart from calibration, and apart from
    the held-out verification set, so the verification figures stay honest). The best
    quantile differs per model: 0.35 for one trained style net, 0.5 for another."""
    import tensorflow as tf

    from exporter.inspect_tflite import TfliteRunner

    try:
        calibrated = _calibrated(saved_model, calibration, signature_key)
        extremes = _per_sample_extremes(calibrated, calibration, signature_key)
        float_model = tf.lite.TFLiteConverter.from_saved_model(
            str(saved_model), [signature_key]).convert()
        samples = [dict(sample) for sample in validation()]
        reference = TfliteRunner(float_model)
        expected = [reference(sample) for sample in samples]
        rmse: dict[float, float] = {}
        for quantile in quantiles:
            candidate = TfliteRunner(_mlir_quantize(
                _with_ranges(calibrated, extremes, quantile), IoType.FLOAT))
            errors = [np.mean((candidate(sample)[name] - want[name]) ** 2)
                      for sample, want in zip(samples, expected, strict=True) for name in want]
            rmse[quantile] = float(np.sqrt(np.mean(errors)))
        best = min(rmse, key=lambda q: rmse[q])
        model = _mlir_quantize(_with_ranges(calibrated, extremes, best), io)
    except ConversionError:
        raise
    except Exception as error:  # converter and interpreter raise many types; one message
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConversionError(f"int8 quantization choosing ranges failed: {first_line}",
                              hint="check that the samples match the model's inputs") from error
    return RangeChoice(RangeOptions(quantile=best), model, rmse)


@dataclass(frozen=True)
class _Extremes:
    lows: np.ndarray  # one per sample
    highs: np.ndarray
    spatial: bool


def _per_sample_extremes(calibrated: bytes, dataset: Dataset,
                         signature_key: str) -> dict[int, _Extremes]:
    """Each float activation's min and max per sample, run in the calibrated (float) model."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=calibrated, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runner = interpreter.get_signature_runner(signature_key)
    details = [d for d in interpreter.get_tensor_details() if d["dtype"] == np.float32]
    lows: dict[int, list[float]] = {}
    highs: dict[int, list[float]] = {}
    for sample in dataset():
        if not isinstance(sample, Mapping):
            raise ConversionError("range estimation needs samples keyed by input name",
                                  hint="yield {input_name: array} from the dataset")
        runner(**{name: np.asarray(a, np.float32) for name, a in sample.items()})
        for detail in details:
            try:
                value = interpreter.get_tensor(detail["index"])
            except ValueError:  # a tensor without data (e.g. an optional input)
                continue
            if value.size:
                lows.setdefault(detail["index"], []).append(float(value.min()))
                highs.setdefault(detail["index"], []).append(float(value.max()))
    shapes = {d["index"]: tuple(d["shape"]) for d in details}
    return {index: _Extremes(np.array(lows[index]), np.array(highs[index]),
                             _is_spatial(shapes[index])) for index in lows}


def _is_spatial(shape: tuple[int, ...]) -> bool:
    return len(shape) == 4 and shape[1] * shape[2] > 1


def sample_quantile_range(lows: Sequence[float], highs: Sequence[float],
                          quantile: float) -> tuple[float, float]:
    """A spatial activation's range from each calibration sample's min and max."""
    return float(np.quantile(lows, 1.0 - quantile)), float(np.quantile(highs, quantile))


def _with_ranges(calibrated: bytes, extremes: Mapping[int, _Extremes], quantile: float) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    for index, tensor in enumerate(model.subgraphs[0].tensors):
        params = tensor.quantization
        found = extremes.get(index)
        if (found is None or not found.spatial or params is None or params.min is None
                or params.max is None or len(params.min) != 1):
            continue
        low, high = sample_quantile_range(found.lows, found.highs, quantile)
        # keep the recorded sign: a ReLU output stays [0, high], never a negative low
        params.min = np.array([min(low, 0.0) if params.min[0] <= 0 else low], np.float32)
        params.max = np.array([max(high, float(params.min[0]))], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
