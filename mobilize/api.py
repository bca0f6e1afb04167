"""`mobilize.export()` and `mobilize.bench()`: the command line's two main jobs, callable from a
script or a notebook. Both import the heavy parts only when called."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobilize.bench.record import BenchRecord
    from mobilize.exporter.pipeline import ExportResult

def export(
    model: Any,
    *,
    out: str | Path,
    targets: Sequence[str] = ("tflite-int8",),
    inputs: Sequence[Sequence[int]] = (),
    input_names: Sequence[str] = (),
    value_range: Any = None,
    output_range: Any = None,
    weights: str | Path | None = None,
    calib: str | Path | None = None,
    calib_samples: int | None = None,
    io: str = "int8",
    min_psnr: float | None = None,
) -> ExportResult:
    """Convert `model` to the TFLite targets, verify each file against PyTorch, write them
    with metadata.json into `out`, and return the typed result.

    model: an nn.Module, a "path/file.py:factory" or "package.module:factory" reference, or a
    TorchScript (.pt) / ExportedProgram (.pt2) file. inputs: NCHW shapes, one per forward()
    argument (default: the module's INPUTS). value_range: (low, high), "0,1", "-1,1",
    "mean=...:std=..." or a ValueRange, one for all inputs or a list, one per input.
    Raises MobilizeError (UsageError for bad input, ConversionError, QualityGateError).
    """
    from mobilize.contract.specs import ValueRange
    from mobilize.errors import UsageError
    from mobilize.exporter.config import ALL_TARGETS, CalibSource, ExportConfig, IoType, Target
    from mobilize.exporter.pipeline import check_outcome, run_export

    is_module = not isinstance(model, (str, os.PathLike))
    if is_module:
        from mobilize.exporter.model_loader import module_label

        ref = module_label(model)
    else:
        ref = str(model)
    try:
        expanded = tuple(dict.fromkeys(
            t for name in targets for t in (ALL_TARGETS if name == "all" else (Target(name),))))
    except ValueError as error:
        raise UsageError(f"unknown target: {error}",
                         hint=f"targets: {', '.join(Target)} or all") from error
    config_args: dict[str, Any] = {}
    if calib_samples is not None:
        config_args["calib_samples"] = calib_samples
    config = ExportConfig(
        model_ref=ref,
        module=model if is_module else None,
        out_dir=Path(out),
        targets=expanded,
        input_shapes=tuple(tuple(int(v) for v in shape) for shape in inputs),
        input_ranges=_ranges(value_range, ValueRange),
        input_names=tuple(input_names),
        output_range=_ranges(output_range, ValueRange)[0] if output_range is not None else None,
        weights=Path(weights) if weights is not None else None,
        io=IoType(io),
        calib_sources=(CalibSource(None, Path(calib)),) if calib is not None else (),
        min_psnr=min_psnr,
        **config_args,
    )
    result = run_export(config)
    check_outcome(config, result)
    return result


def _ranges(value: Any, value_range: type) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, value_range):
        return (value,)
    if isinstance(value, str):
        return (value_range.parse(value),)
    if isinstance(value, tuple) and len(value) == 2 and all(
            isinstance(v, (int, float)) for v in value):
        return (value_range(float(value[0]), float(value[1])),)
    return tuple(r for item in value for r in _ranges(item, value_range))


def bench(
    model: str | Path,
    *,
    serial: str | Sequence[str] | None = None,
    target: Sequence[str] = (),
    delegate: str = "cpu",
    runs: int = 50,
    warmup: int = 10,
    threads: int = 4,
    db: str | Path | None = None,
    adb_key: str | Path | None = None,
    transport: str = "auto",
) -> list[BenchRecord]:
    """Benchmark a .tflite file, or every file of an export folder, on Android devices:
    `serial` (one or several), else ANDROID_SERIAL, else the only attached device. Each run
    is stored in the results database (`db`, default ~/.local/share/mobilize/results.db).
    Returns one BenchRecord per run; raises MobilizeError when a device or a run fails."""
    from mobilize.bench.config import BenchConfig, Delegate, GpuPrecision, HarnessOptions
    from mobilize.bench.fleet import (
        bench_on_device,
        fan_out,
        raise_device_errors,
        raise_failed_runs,
    )
    from mobilize.bench.model_input import resolve_models
    from mobilize.bench.record import BenchRecord
    from mobilize.device.connect import choose_serials, discover
    from mobilize.device.keys import default_key_path
    from mobilize.device.transports import ConnectOptions, Transport
    from mobilize.results.store import default_db_path, open_store, save_run

    config = BenchConfig(Delegate(delegate), threads, warmup, runs, GpuPrecision.FP16)
    options = ConnectOptions(key_path=Path(adb_key) if adb_key else default_key_path(),
                             transport=Transport(transport))
    asked = [serial] if isinstance(serial, str) else list(serial or [])
    serials = choose_serials(asked, os.environ.get("ANDROID_SERIAL"),
                             [] if asked else discover(options), all_devices=False)
    models = resolve_models([Path(model)], target)
    db_path = Path(db) if db is not None else default_db_path()

    def save(record: dict[str, Any]) -> None:
        with open_store(db_path) as connection:
            save_run(connection, record)

    outcomes = fan_out(serials, lambda one: bench_on_device(
        one, models, config, HarnessOptions(), options, 60.0, save, announce=_quiet))
    raise_device_errors(outcomes, _quiet)
    records = [record for outcome in outcomes for record in outcome.records]
    raise_failed_runs(records)
    return [BenchRecord.from_json(record) for record in records]


def _quiet(message: str) -> None:
    """Progress lines of the library calls are not printed; errors are raised instead."""
