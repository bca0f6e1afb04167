"""Benchmarks on several devices at once: one worker thread per device, each holding that
device's lock and its own connection; every run is saved as it finishes, so a device that
fails later loses nothing already measured. Ctrl-C stops every device's run at its next
device call; each cleans its device up before the command exits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mobilize.bench import app_contract
from mobilize.bench.config import BenchConfig, HarnessOptions
from mobilize.bench.model_input import ModelToBench
from mobilize.bench.runner import BenchSession
from mobilize.device.connect import open_device
from mobilize.device.errors import AppError, DeviceError, UsageError
from mobilize.device.lock import device_lock
from mobilize.device.transports import ConnectOptions

Announce = Callable[[str], None]


@dataclass
class DeviceOutcome:
    serial: str
    records: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None


def bench_on_device(
    serial: str,
    schedule: Sequence[ModelToBench],
    config: BenchConfig,
    harness: HarnessOptions,
    options: ConnectOptions,
    lock_timeout: float,
    save: Callable[[dict[str, Any]], None],
    after_run: Callable[[BenchSession, ModelToBench, dict[str, Any]], dict[str, Any]] | None = None,
    announce: Announce = print,
) -> DeviceOutcome:
    """One device's worker: hold its lock, run the schedule, save each run as it ends."""
    outcome = DeviceOutcome(serial)
    cancel = getattr(_worker, "cancel", None)
    lock_deadline = time.monotonic() + lock_timeout
    try:
        # The serial as spelled first, then (in prepare) the device's own identity, so
        # 127.0.0.1:P and localhost:P, or a phone's USB serial and its address, queue too.
        with device_lock(serial, lock_timeout, announce=announce, cancel=cancel):
            session = BenchSession(
                lambda _old: open_device(serial, options, announce),
                harness,
                announce,
                lock_timeout_s=max(0.0, lock_deadline - time.monotonic()),
                cancel=cancel,
            )
            try:
                session.prepare()
                for model in schedule:
                    announce(
                        f"[{serial}] {model.name}: {config.delegate.value}, {config.num_runs} runs"
                    )
                    record = session.run(model, config)
                    if after_run is not None:  # --check-quality: the phone's output vs PyTorch
                        record = after_run(session, model, record)
                    save(record)
                    outcome.records.append(record)
            finally:
                session.close()
    except DeviceError as error:
        outcome.error = error
    except UsageError as error:
        outcome.error = error
    return outcome


_worker = threading.local()  # .cancel: the Event of the fan_out this worker thread serves


def fan_out(serials: Sequence[str], work: Callable[[str], Any]) -> list[Any]:
    """work(serial) for each serial, in parallel. One serial runs in this thread (Ctrl-C
    reaches it directly); with several, Ctrl-C sets their cancel event, waits until each
    has stopped and cleaned its device, and is raised again."""
    if len(serials) <= 1:  # none (every listed device unusable) or one: no pool needed
        return [work(serial) for serial in serials]
    cancel = threading.Event()

    def one(serial: str) -> Any:
        _worker.cancel = cancel
        try:
            return work(serial)
        finally:
            _worker.cancel = None

    pool = ThreadPoolExecutor(max_workers=len(serials), thread_name_prefix="device")
    try:
        futures = [pool.submit(one, serial) for serial in serials]
        return [future.result() for future in futures]
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True)


def raise_device_errors(outcomes: Sequence[DeviceOutcome], announce: Announce = print) -> None:
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if not failed:
        return
    for outcome in failed:  # a run cut off has no result: say so, and what was kept
        error = outcome.error
        if isinstance(error, DeviceError):
            error.hint = f"{error.hint.rstrip('.')}. {_stored_note(outcome)}" if error.hint \
                else _stored_note(outcome)
    if len(failed) == 1 and len(outcomes) == 1:
        raise failed[0].error  # type: ignore[misc]
    for outcome in failed:
        message = str(outcome.error)
        prefix = "" if outcome.serial in message else f"[{outcome.serial}] "
        announce(f"error: {prefix}{message}")
    raise DeviceError(
        f"{len(failed)} of {len(outcomes)} devices failed: "
        + ", ".join(outcome.serial for outcome in failed),
        hint="the errors above say why; runs that finished on other devices were saved",
    )


def _stored_note(outcome: DeviceOutcome) -> str:
    kept = len(outcome.records)
    if not kept:
        return "Nothing was stored for this device: no run finished"
    return (f"The {kept} run(s) that finished before it were stored; the one cut off has no "
            "result and was not")


def raise_failed_runs(records: Sequence[dict[str, Any]]) -> None:
    failed = [record for record in records if record["result"]["status"] != app_contract.STATUS_OK]
    if not failed:
        return
    lines = [
        f"{r['model_name']} on {r['serial']}: {r['result']['status']}: {r['result']['message']}"
        for r in failed
    ]
    statuses = {record["result"]["status"] for record in failed}
    raise AppError(
        f"{len(failed)} run(s) failed on the device:\n  " + "\n  ".join(lines),
        hint=" ".join(FAILURE_HINTS.get(status, "") for status in sorted(statuses)).strip() or None,
    )


FAILURE_HINTS = {
    "model_not_found": "The pushed model vanished from the device: check its free space.",
    "model_load_failed": "The runtime could not load the model: re-export it (ops this "
    "runtime lacks, or a damaged file).",
    "delegate_failed": "The delegate refused the model: try --delegate cpu, or for GPU "
    "--gpu-precision fp32.",
    "inference_failed": "The model loaded but did not run: the message above says why.",
    "out_of_memory": "The device ran out of memory: try a smaller input, fewer --threads, "
    "or --delegate cpu.",
    "invalid_arguments": "The runner refused its settings: check --threads/--runs/--warmup.",
}
