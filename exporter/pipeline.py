"""The export pipeline: numbered stages, each a function returning a typed artifact.

    1 load model        -> LoadedModel
    2 PyTorch -> ONNX   -> OnnxArtifact
    3 clean ONNX        -> GraphPlan (onnxsim, then each target's rewrites; target_graphs.py)
    4 onnx2tf           -> GraphPlan with a SavedModelArtifact (float, NHWC) per distinct graph
    5 representative data -> RepresentativeData (calibration + held-out verification)
    6 convert + verify, per target -> TargetResult
    7 write             -> ExportResult (files, metadata.json; atomic)
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mobilize.contract import files as artifacts
from mobilize.errors import ConversionError, QualityGateError
from mobilize.exporter import finetune_check, int8_advice, preflight
from mobilize.exporter.calibration import RepresentativeData, build_representative_data
from mobilize.exporter.config import ExportConfig, Int8Ranges, Target
from mobilize.exporter.export_metadata import build_metadata, write_graphs
from mobilize.exporter.finetune_report import Finetuned
from mobilize.exporter.finetune_stage import finetune_stage
from mobilize.exporter.inspect_tflite import GraphReport, inspect_graph
from mobilize.exporter.int8_advice import Option
from mobilize.exporter.int8_ranges import RangeEstimator
from mobilize.exporter.model_loader import LoadedModel, load_model
from mobilize.exporter.native_logs import quiet_native_stderr
from mobilize.exporter.onnx_export import OnnxArtifact, export_onnx
from mobilize.exporter.output_range import measure, range_warnings
from mobilize.exporter.quant_debug import LayerQuantError, debug_quantization
from mobilize.exporter.saved_model import SavedModelArtifact
from mobilize.exporter.target_graphs import (
    GraphPlan,
    convert_graphs,
    extend_plan,
    onnx2tf_line,
    plan_graphs,
    rewrites_line,
)
from mobilize.exporter.tflite_convert import (
    RangeReport,
    TfliteArtifact,
    convert,
    representative_dataset,
    split_by_photo,
    split_validation,
)
from mobilize.exporter.verify import Verification, strip_image, torch_outputs, verify

STAGE_COUNT = 7


class ProgressListener(Protocol):
    def stage_started(self, number: int, name: str) -> None: ...
    def stage_finished(self, number: int, name: str, seconds: float, detail: str) -> None: ...
    def warn(self, message: str) -> None: ...


class SilentProgress:
    def stage_started(self, number: int, name: str) -> None:
        pass

    def stage_finished(self, number: int, name: str, seconds: float, detail: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


@dataclass
class _StageTimer:
    detail: str = ""
    seconds: float = 0.0


@contextlib.contextmanager
def _stage(progress: ProgressListener, number: int, name: str) -> Iterator[_StageTimer]:
    timer = _StageTimer()
    progress.stage_started(number, name)
    start = time.perf_counter()
    yield timer
    timer.seconds = time.perf_counter() - start
    progress.stage_finished(number, name, timer.seconds, timer.detail)


@dataclass(frozen=True)
class TargetResult:
    target: Target
    seconds: float
    file: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    io: str | None = None
    graph: GraphReport | None = None
    verification: Verification | None = None
    strip: str | None = None
    error: str | None = None
    hint: str | None = None
    warnings: tuple[str, ...] = ()
    ranges: RangeReport | None = None
    calibration_count: int | None = None  # samples the ranges were taken from
    validation_count: int = 0  # samples split off to choose the range quantile
    quant_debug: tuple[LayerQuantError, ...] | None = None  # worst first (--debug-quant)
    # tflite-int8 under 30 dB: it and the other targets measured on this model for the advice
    alternatives: tuple[Option, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    metadata_path: Path
    onnx_path: Path
    targets: tuple[TargetResult, ...]
    warnings: tuple[str, ...] = ()
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def paths(self) -> dict[Target, Path]:
        return {t.target: self.out_dir / t.file for t in self.targets if t.file}

    @property
    def failed(self) -> tuple[TargetResult, ...]:
        return tuple(t for t in self.targets if not t.ok)


def run_export(config: ExportConfig, progress: ProgressListener | None = None,
               native_logs: bool = False) -> ExportResult:
    """Run every stage; native_logs=True lets TensorFlow's C++ log lines through (--debug)."""
    progress = progress or SilentProgress()
    with quiet_native_stderr(enabled=not native_logs):
        return _run_stages(config, progress)


def _run_stages(config: ExportConfig, progress: ProgressListener) -> ExportResult:
    seconds: dict[str, float] = {}
    preflight.check_out_dir(config.out_dir)  # bad input fails here, not after the conversion
    with tempfile.TemporaryDirectory(prefix="mobilize-export-") as work_text:
        work = Path(work_text)
        with _stage(progress, 1, "load model") as stage:
            loaded = load_model(
                config.model_ref, weights=config.weights, input_shapes=config.input_shapes,
                input_ranges=config.input_ranges, input_names=config.input_names,
                output_range=config.output_range, module=config.module)
            stage.detail = ", ".join(f"{s.name} {'x'.join(map(str, s.shape))} [{s.value_range}]"
                                     for s in loaded.inputs)
        seconds["load"] = stage.seconds
        preflight.check_calibration(loaded.inputs, config)  # before ONNX and onnx2tf
        # --finetune: the files come from the fine-tuned student; `loaded` (the user's model)
        # stays the reference every target is verified against
        finetuned = finetune_stage(config, loaded, progress)
        if finetuned is not None:
            seconds["finetune"] = finetuned.report.seconds
        with _stage(progress, 2, "PyTorch -> ONNX") as stage:
            raw_onnx = export_onnx(finetuned.exported(loaded) if finetuned else loaded,
                                   work / "raw.onnx", config.opset)
            stage.detail = f"opset {raw_onnx.opset}, {len(raw_onnx.op_types)} op types"
        seconds["onnx"] = stage.seconds
        with _stage(progress, 3, "clean ONNX (fold, simplify, rewrite)") as stage:
            plan = plan_graphs(raw_onnx, config, work)
            stage.detail = rewrites_line(plan)
        seconds["clean"] = stage.seconds
        with _stage(progress, 4, "onnx2tf -> float SavedModel") as stage:
            plan = convert_graphs(plan, work)
            stage.detail = onnx2tf_line(plan)
        seconds["onnx2tf"] = stage.seconds
        with _stage(progress, 5, "representative data") as stage:
            calibrating = any(t.needs_calibration for t in config.targets)
            data = build_representative_data(
                loaded.inputs, config.calib_sources,
                config.calib_samples if calibrating else 1, config.verify_samples, calibrating)
            stage.detail = (f"{data.calibration.count} calibration, "
                            f"{data.verification.count} held-out samples")
            for warning in data.calibration.warnings:
                progress.warn(warning)
            # before any int8 figure: is the declared output range the model's?
            warnings = range_warnings(measure(torch_outputs(
                loaded.module, data.calibration, loaded.inputs, loaded.output_names)),
                loaded.output_range)
            for warning in warnings:
                progress.warn(warning)
        seconds["data"] = stage.seconds
        results = []
        reference = torch_outputs(loaded.module, data.verification, loaded.inputs,
                                  loaded.output_names)
        with _stage(progress, 6, "convert + verify") as stage:
            for target in config.targets:
                result = _convert_target(config, target, loaded, plan, data, reference, work)
                results.append(result)
                progress.stage_finished(6, f"  {target.value}", result.seconds,
                                        _summary(result))
            results = _advise_int8(config, loaded, plan, raw_onnx, data, reference, results,
                                   work, progress)
            stage.detail = f"{sum(r.ok for r in results)}/{len(results)} targets"
        seconds["convert"] = stage.seconds
        if not any(r.ok for r in results):  # nothing worth writing: leave no file behind
            first = results[0]
            listing = "; ".join(f"{r.target.value}: {r.error}" for r in results)
            raise ConversionError(listing if len(results) > 1 else first.error or "failed",
                                  hint=first.hint)
        check = _against_post_training(config, loaded, data, results, finetuned, work,
                                       progress)
        if check is not None and check[0].trails_on_verification:
            assert finetuned is not None
            warnings = (*warnings, check[0].verification_warning(finetuned.report.steps))
            progress.warn(warnings[-1])
        with _stage(progress, 7, "write outputs") as stage:
            if check is not None and not check[0].keeps_finetuned:
                result = finetune_check.post_training_instead(config, check[1], finetuned,
                                                             check[0])
            else:
                result = _write_outputs(config, loaded, plan, data, results, work, seconds,
                                        finetuned, warnings, check[0] if check else None)
            stage.detail = str(result.metadata_path)
    return result


def _against_post_training(config: ExportConfig, loaded: LoadedModel, data: RepresentativeData,
                           results: list[TargetResult], finetuned: Finetuned | None, work: Path,
                           progress: ProgressListener,
                           ) -> tuple[finetune_check.RealFileCheck, ExportResult] | None:
    """After a fine-tuning that moved the weights: the same export of the user's own
    weights, both int8 files scored on the held-out calibration samples (finetune_check)."""
    int8 = next((r for r in results if r.target is Target.INT8 and r.ok and r.file), None)
    if finetuned is None or finetuned.report.best_step == 0 or int8 is None or not int8.file:
        return None
    return finetune_check.compare_with_post_training(
        lambda plain: _run_stages(plain, SilentProgress()), config, loaded,
        split_by_photo(data.calibration)[1], (work / "out" / int8.file).read_bytes(), work,
        progress, int8.verification.worst_snr_db if int8.verification else None)


def _convert_target(config: ExportConfig, target: Target, loaded: LoadedModel,
                    plan: GraphPlan, data: RepresentativeData,
                    reference: dict[str, np.ndarray], work: Path) -> TargetResult:
    start = time.perf_counter()
    graph_of_target = plan.graph_of(target)
    if graph_of_target.saved is None:  # onnx2tf failed on this target's own graph
        assert graph_of_target.error is not None
        return TargetResult(target=target, seconds=0.0, error=graph_of_target.error.message,
                            hint=graph_of_target.error.hint)
    saved: SavedModelArtifact = graph_of_target.saved
    quant = config.quant_config(target)
    calibration, validation = data.calibration, None
    if target is Target.INT8 and config.int8_ranges is Int8Ranges.AUTO:
        calibration, validation = split_validation(data.calibration)
    try:
        dataset = (representative_dataset(calibration, loaded.inputs, saved)
                   if target.needs_calibration else None)
        validation_dataset = (representative_dataset(validation, loaded.inputs, saved)
                              if validation is not None else None)
        tflite: TfliteArtifact = convert(saved, quant, dataset, validation_dataset)
        graph = inspect_graph(tflite.content)
        try:
            verification, _, converted = verify(
                loaded.module, tflite.content, data.verification, loaded.inputs,
                loaded.output_names, loaded.output_range, reference)
        except (RuntimeError, ValueError) as error:
            raise _runtime_error(error, target) from error
        layers = None
        if config.debug_quant and target is Target.INT8 and dataset is not None:
            # the same samples and ranges as the exported model
            assert tflite.ranges is not None
            ranges = (tflite.ranges.options
                      if tflite.ranges.estimator is not RangeEstimator.MIN_MAX else None)
            layers = tuple(debug_quantization(saved.path, dataset, ranges=ranges))
    except ConversionError as error:
        return TargetResult(target=target, seconds=time.perf_counter() - start,
                            error=error.message, hint=error.hint)
    file = f"model_{target.file_suffix}.tflite"
    (work / "out").mkdir(exist_ok=True)
    (work / "out" / file).write_bytes(tflite.content)
    strip_file = None
    first_output = loaded.output_names[0]
    strip = strip_image(loaded.inputs, data.verification, reference[first_output],
                        converted[first_output], loaded.output_range)
    if strip is not None:
        strip_file = f"verify_{target.file_suffix}.png"
        artifacts.atomic_write_png(work / "out" / strip_file, strip)
    return TargetResult(
        target=target, seconds=time.perf_counter() - start, file=file,
        size_bytes=len(tflite.content), sha256=artifacts.sha256_bytes(tflite.content),
        io=tflite.io.value if tflite.io else "float", graph=graph,
        verification=verification, strip=strip_file,
        warnings=_integer_warnings(target, graph),
        ranges=tflite.ranges,
        calibration_count=calibration.count if target.needs_calibration else None,
        validation_count=validation.count if validation is not None else 0,
        quant_debug=layers)


def _integer_warnings(target: Target, graph: GraphReport) -> tuple[str, ...]:
    if not target.needs_calibration or graph.fully_integer:
        return ()
    # The converter keeps an op without an integer kernel in float between DEQUANTIZE and
    # QUANTIZE even when asked for integer ops only; name the op itself first.
    compute = [op for op in graph.float_ops if not op.startswith(("QUANTIZE#", "DEQUANTIZE#"))]
    named = compute or list(graph.float_ops)
    return (f"{target.value} is not fully integer: {', '.join(named)} "
            f"run{'s' if len(named) == 1 else ''} in float (with {len(graph.float_ops)} float "
            "ops in all); int8-only accelerators (NPU, DSP) fall back to the CPU there. "
            "Replace that layer with one that has an integer kernel, or accept the float "
            "island",)


def _advise_int8(config: ExportConfig, loaded: LoadedModel, plan: GraphPlan,
                 raw_onnx: OnnxArtifact, data: RepresentativeData,
                 reference: dict[str, np.ndarray], results: list[TargetResult], work: Path,
                 progress: ProgressListener) -> list[TargetResult]:
    """int8_advice.advise_int8, converting the targets it asks for from their own graphs."""
    def convert_missing(targets: list[Target], folder: Path) -> dict[Target, TargetResult]:
        wider = extend_plan(plan, raw_onnx, config, targets, folder)
        return {t: _convert_target(config, t, loaded, wider, data, reference, folder)
                for t in targets}

    return int8_advice.advise_int8(config, results, convert_missing, work, progress)


def _runtime_error(error: Exception, target: Target) -> ConversionError:
    text = str(error)
    node = re.search(r"Node number (\d+) \((\w+)\)", text)
    where = f" at op {node.group(2)} (node {node.group(1)})" if node else ""
    return ConversionError(
        f"{target.value} converted but fails in the TFLite interpreter{where}: "
        f"{text.splitlines()[0] if text else type(error).__name__}",
        hint="this op has no kernel for these types; try another target "
        "(tflite-int8 or tflite-fp16), or rewrite the layer (see --onnx-passes)")


def _summary(result: TargetResult) -> str:
    if not result.ok:
        return f"[failed] {result.error}"
    assert result.verification is not None and result.graph is not None
    psnr = result.verification.worst_psnr_db
    if not result.target.needs_calibration:
        integer = "float model"
    elif result.graph.fully_integer:
        integer = "fully integer"
    else:
        integer = f"NOT fully integer ({len(result.graph.float_ops)} float ops)"
    ranges = result.ranges
    if ranges is not None and ranges.mode is not Int8Ranges.MINMAX:
        integer += f", ranges {ranges.chosen} ({ranges.mode.value})"
        if ranges.narrowed:
            kinds = sorted({op.op.lower() for op in ranges.narrowed})
            integer += f", {len(ranges.narrowed)} {'/'.join(kinds)} narrowed"
    return f"{result.size_bytes / 1024:.1f} KiB, worst PSNR {psnr:.1f} dB, {integer}"


def _write_outputs(config: ExportConfig, loaded: LoadedModel, plan: GraphPlan,
                   data: RepresentativeData, results: list[TargetResult], work: Path,
                   seconds: dict[str, float], finetuned: Finetuned | None = None,
                   warnings: tuple[str, ...] = (),
                   check: finetune_check.RealFileCheck | None = None) -> ExportResult:
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    write_graphs(plan, out)
    for result in results:
        for name in (result.file, result.strip):
            if name:
                artifacts.atomic_write_bytes(out / name, (work / "out" / name).read_bytes())
    metadata = build_metadata(config, loaded, plan, data, results, seconds, warnings)
    if finetuned is not None:  # finetuned.pt: the weights the files were converted from
        metadata["finetune"] = finetuned.write(out)
        if check is not None:
            metadata["finetune"]["real_file_check"] = check.to_json()
    metadata_path = preflight.replace_metadata(out, metadata)  # last; drops stale files
    return ExportResult(out_dir=out, metadata_path=metadata_path, onnx_path=out / "model.onnx",
                        targets=tuple(results),
                        warnings=data.calibration.warnings + warnings,
                        stage_seconds=dict(seconds))


def _capped(result: ExportResult, min_psnr: float) -> str:
    """Name the targets whose own integer input grid already keeps PyTorch below the gate."""
    caps = {t.target.value: t.verification.input_cap_psnr_db
            for t in result.targets if t.verification}
    capped = [name for name, cap in caps.items() if cap is not None and cap < min_psnr]
    if not capped:
        return ""
    return (f" ({', '.join(capped)}: even PyTorch, fed the input rounded to the file's integer "
            "grid, stays below the gate; the net amplifies input noise, and only a wider input "
            "type or a net trained to be less sensitive can pass)")


def check_outcome(config: ExportConfig, result: ExportResult) -> None:
    """Raise for targets that failed and for quality below --min-psnr (files are written)."""
    if config.min_psnr is not None:
        low = [(t.target.value, t.verification.worst_psnr_db) for t in result.targets
               if t.verification and t.verification.worst_psnr_db < config.min_psnr]
        if low:
            listing = ", ".join(f"{name} {psnr:.2f} dB" for name, psnr in low)
            raise QualityGateError(
                f"PSNR below --min-psnr {config.min_psnr:g} dB: {listing}"
                + _capped(result, config.min_psnr),
                hint=f"look at the verify_*.png strips in {result.out_dir}; for int8 try more "
                "or more typical calibration images (--calib-dir), --io float, or a float "
                "target; files and metadata.json were written")
    if result.failed:
        listing = "; ".join(f"{t.target.value}: {t.error}" for t in result.failed)
        raise ConversionError(
            f"{len(result.failed)} of {len(result.targets)} targets failed: {listing}",
            hint=f"{result.failed[0].hint or ''} The other targets were written to "
            f"{result.out_dir}".strip())


