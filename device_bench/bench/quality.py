"""The on-phone quality gate: does the phone draw what PyTorch draws?

Held-out inputs go to the device as .npy files in the .tflite's own input layout and dtype
(quantized with the model's input scale/zero point for int8/uint8 I/O); the app runs the
model on each with the chosen delegate and writes .npy outputs into its files folder; the
harness pulls them back, dequantizes them and compares them with the PyTorch fp32 outputs
computed on this machine (PSNR, SSIM, max abs error per image). This catches what a
host-side check cannot: the GPU delegate's fp16 arithmetic, a driver bug, a delegate that
silently changes results.

--min-psnr gates on the worst single image (`worst_psnr_db`), the same definition as the
export's --min-psnr (metadata `worst_image_psnr_db`); the PSNR of the error pooled over the
images (`pooled_psnr_db`, the export's `psnr_db`) is kept beside it for reference.

The quality pass is its own short launch of the app (no warm-up, one timed run), so the
files it reads and writes never sit inside the latency samples of the timing run.

The host side (the PyTorch reference, the .tflite's I/O formats, the figures) is in
quality_reference.py; the previews kept with the run are in quality_images.py.

The hook for `mobilize bench` (bench_hook wraps the first two): `reference =
prepare_reference(model_path, quality_images)` (quality_reference.py) before the runs, then
`record = check_record(session, model, config, reference, record)` after each run, and
`enforce_min_psnr(records, min_psnr)` at the end.
"""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mobilize.bench import app_contract
from mobilize.bench.app_control import AM_START_TIMEOUT_S, am_start_command, wait_for_result
from mobilize.bench.config import BenchConfig
from mobilize.bench.model_input import ModelToBench
from mobilize.bench.quality_images import previews
from mobilize.bench.quality_reference import (
    DEFAULT_QUALITY_SAMPLES,
    QualityReference,
    QualityResult,
    evaluate,
    export_folder_of,
    model_formats,
    prepare_reference,
)
from mobilize.bench.result_check import check_result
from mobilize.bench.runner import BenchSession
from mobilize.device import ops
from mobilize.device.errors import AppError
from mobilize.device.parse import parse_am_start
from mobilize.device.transports import quote
from mobilize.errors import ExitCode, MobilizeError, QualityGateError

# Outputs are written where the app may write (its own files folder) and copied out with
# run-as, as the result JSON is; inputs and the model sit in the shell's work folder.
APP_QUALITY_SUBDIR = "files/quality"
EXIT_QUALITY = ExitCode.QUALITY_GATE


class QualityError(QualityGateError):
    """The phone's output fell below --min-psnr (exit 6: apart from device errors' 3)."""

    exit_code = EXIT_QUALITY


# --------------------------------------------------------------------------- on the device


def run_on_device(
    session: BenchSession, model: ModelToBench, config: BenchConfig, reference: QualityReference
) -> QualityResult:
    """Push the inputs and the model, run the app once with the quality extras, pull, compare."""
    input_format, output_format = model_formats(model.path, reference)
    run_id = f"quality-{uuid.uuid4().hex[:12]}"
    remote = f"{app_contract.REMOTE_WORK_DIR}/{run_id}"
    app_outputs = f"{APP_QUALITY_SUBDIR}/{run_id}"
    device = session.device
    names = reference.file_names()
    with tempfile.TemporaryDirectory(prefix="mobilize-quality-") as temp:
        local = Path(temp)
        ops.make_dir(device, f"{remote}/in")
        try:
            for index, name in enumerate(names):
                np.save(local / name, input_format.encode(reference.inputs[index : index + 1]))
                ops.push_verified(device, local / name, f"{remote}/in/{name}", timeout=60.0)
            remote_model = f"{remote}/{model.path.name}"
            ops.push_verified(
                device,
                model.path,
                remote_model,
                timeout=session.options.push_timeout_s,
                sha256=model.sha256,
            )
            result = _start_and_wait(session, run_id, remote_model, config, remote, app_outputs)
            written = set((result.get("quality") or {}).get("files") or [])
            missing = [name for name in names if name not in written]
            if missing:
                raise AppError(
                    f"the app wrote no quality output for {', '.join(missing)}",
                    hint="install the app that ships with this mobilize (--apk)",
                    serial=device.serial,
                )
            outputs = [_pull_output(session, app_outputs, remote, name, local) for name in names]
        finally:
            _clean(session, remote, app_outputs, run_id)
    decoded = np.concatenate([output_format.decode(array) for array in outputs])
    return evaluate(reference, decoded)


def _start_and_wait(
    session: BenchSession,
    run_id: str,
    remote_model: str,
    config: BenchConfig,
    remote: str,
    app_outputs: str,
) -> dict[str, Any]:
    device = session.device
    one_run = BenchConfig(config.delegate, config.threads, 0, 1, config.gpu_precision)
    command = am_start_command(run_id, remote_model, one_run)
    extras = {
        app_contract.EXTRA_QUALITY_INPUTS: f"{remote}/in",
        app_contract.EXTRA_QUALITY_OUTPUTS: f"{app_contract.APP_FILES_DIR}/quality/{run_id}",
    }
    command += "".join(f" --es {quote(name)} {quote(value)}" for name, value in extras.items())
    started = device.shell(command, AM_START_TIMEOUT_S)
    am = parse_am_start(started.stdout)
    if not started.ok or not am.ok:
        raise AppError(
            "the benchmark app did not start for the quality pass: "
            f"{am.error or started.stdout.strip()}",
            hint="check the app is installed (`mobilize devices`) or reinstall it with --apk",
            serial=device.serial,
        )
    result = check_result(
        json.loads(wait_for_result(device, run_id, session.options)), device.serial
    )
    if result["status"] != app_contract.STATUS_OK:
        raise AppError(
            f"the quality pass failed on the device: {result['status']}: {result['message']}",
            hint="the timing run's status says more; try another --delegate",
            serial=device.serial,
        )
    return result


def _pull_output(
    session: BenchSession, app_outputs: str, remote: str, name: str, local: Path
) -> np.ndarray:
    """Copy an output out of the app's folder with run-as (the shell cannot read it), pull it."""
    device = session.device
    staged = f"{remote}/{name}"
    copy = device.shell(
        f"run-as {quote(app_contract.PACKAGE)} cat {quote(f'{app_outputs}/{name}')} "
        f"> {quote(staged)}",
        ops.SHORT_TIMEOUT_S,
    )
    if not copy.ok:
        raise AppError(
            f"cannot copy quality output {name} out of the app: {copy.stderr.strip()}",
            hint="install a debuggable build of the app (run-as needs one) with --apk",
            serial=device.serial,
        )
    target = local / f"out-{name}"
    device.pull(staged, target, 60.0)
    try:
        return np.load(target, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise AppError(
            f"quality output {name} from the device is not a .npy array: {error}",
            hint="a bug in the app: it must write numpy .npy files",
            serial=device.serial,
        ) from error


def _clean(session: BenchSession, remote: str, app_outputs: str, run_id: str) -> None:
    """Remove what the pass left, without hiding the error that brought us here."""
    device = session.device
    package = quote(app_contract.PACKAGE)
    for command in (
        f"rm -rf {quote(remote)}",
        f"run-as {package} rm -rf {quote(app_outputs)}",
        f"run-as {package} rm -f {quote(app_contract.result_relative_path(run_id))}",
    ):
        try:
            device.shell(command, ops.SHORT_TIMEOUT_S)
        except MobilizeError:
            pass


# ------------------------------------------------------------ record, previews, threshold


def check_record(
    session: BenchSession,
    model: ModelToBench,
    config: BenchConfig,
    reference: QualityReference,
    record: dict[str, Any],
) -> dict[str, Any]:
    """The hook after a timing run: run the quality pass and keep its figures in the record
    (record["harness"]["quality"], stored with the run). A run that failed gets none."""
    if record["result"]["status"] != app_contract.STATUS_OK:
        return record
    quality = run_on_device(session, model, config, reference)
    harness = {**record["harness"], "quality": quality_json(reference, quality)}
    return {**record, "harness": harness}


def quality_json(reference: QualityReference, quality: QualityResult) -> dict[str, Any]:
    return {
        "source": reference.source,
        "count": reference.count,
        "worst_psnr_db": _finite(quality.worst_psnr_db),  # what --min-psnr gates on
        "pooled_psnr_db": _finite(quality.pooled_psnr_db),
        "mean_ssim": quality.mean_ssim,
        "max_abs_error": quality.max_abs_error,
        "images": [figures.__dict__ for figures in quality.images],
        "previews": previews(reference, quality.outputs),
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def enforce_min_psnr(records: Sequence[dict[str, Any]], min_psnr: float | None) -> None:
    """Raise QualityError naming every run whose phone output fell below `min_psnr` dB."""
    if min_psnr is None:
        return
    low = []
    for record in records:
        quality = record["harness"].get("quality")
        if quality is None or quality["worst_psnr_db"] is None:
            continue
        if quality["worst_psnr_db"] < min_psnr:
            delegate = record["result"]["config"]["delegate"]
            low.append(
                f"{record['model_name']} on {delegate}: worst PSNR "
                f"{quality['worst_psnr_db']:.1f} dB < {min_psnr:g} dB"
            )
    if low:
        raise QualityError(
            f"the phone's output fell below --min-psnr {min_psnr:g} dB:\n  " + "\n  ".join(low),
            hint="ship a more precise variant (fp16 or fp32, or int16x8), try "
            "--gpu-precision fp32, or look at the report's difference heatmaps",
        )


AfterRun = Callable[[BenchSession, ModelToBench, dict[str, Any]], dict[str, Any]]


def bench_hook(
    models: Sequence[ModelToBench],
    config: BenchConfig,
    quality_images: Path | None,
    count: int = DEFAULT_QUALITY_SAMPLES,
) -> AfterRun:
    """`mobilize bench --check-quality`: the PyTorch references, computed once per export
    folder before any device is touched, and the call to make after each run."""
    references: dict[Path, QualityReference] = {}
    for model in models:
        folder = export_folder_of(model.path)
        if folder not in references:
            references[folder] = prepare_reference(folder, quality_images, count)

    def after_run(
        session: BenchSession, model: ModelToBench, record: dict[str, Any]
    ) -> dict[str, Any]:
        reference = references[export_folder_of(model.path)]
        return check_record(session, model, config, reference, record)

    return after_run


def summary_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """One line per run with quality figures, for the terminal."""
    lines = []
    for record in records:
        quality = record["harness"].get("quality")
        if not quality:
            continue
        psnr = quality["worst_psnr_db"]
        pooled = quality.get("pooled_psnr_db")
        ssim = quality["mean_ssim"]
        lines.append(
            f"quality: {record['model_name']} on {record['result']['config']['delegate']}: "
            f"worst PSNR {'identical' if psnr is None else f'{psnr:.1f} dB'} "
            f"(pooled {'identical' if pooled is None else f'{pooled:.1f} dB'}), "
            f"SSIM {'-' if ssim is None else f'{ssim:.4f}'}, "
            f"max abs error {quality['max_abs_error']:.4g} ({quality['count']} images)"
        )
    return lines
