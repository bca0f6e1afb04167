"""Benchmark one model on one device: push, start the app, wait, pull, check, clean up.

A BenchSession holds one device connection, and the device's lock keyed by the device's
own identity, for a series of runs. `--timeout` (result_timeout_s) is a deadline for each
run as a whole: every device call gets min(its own timeout, what is left). However a run
ends (a result, an app failure, the deadline, Ctrl-C, a device error) the app is stopped
and what was pushed for the run and what the app wrote for it are removed; a session
first removes what a killed harness left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from mobilize.bench import app_contract, benchmark_model
from mobilize.bench.app_control import (
    AM_START_TIMEOUT_S,
    am_start_command,
    check_abi,
    clean_leftovers,
    cooldown_gate,
    end_run,
    ensure_app,
    stop_app,
    wait_for_result,
)
from mobilize.bench.config import (
    BenchConfig,
    HarnessOptions,
    RunnerKind,
)
from mobilize.bench.model_input import ModelToBench
from mobilize.bench.result_check import check_result
from mobilize.device import ops
from mobilize.device.device import Device
from mobilize.device.errors import AppError
from mobilize.device.lock import device_lock, identity_key
from mobilize.device.parse import MemInfo, ThermalStatus, parse_am_start
from mobilize.results.stats import coefficient_of_variation

Announce = Callable[[str], None]
DeviceFactory = Callable[[Device | None], Device]
DEFAULT_LOCK_TIMEOUT_S = 3600.0  # `--lock-timeout`'s default


def new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class BenchSession:
    """One device, a series of runs; reconnects through `factory` when a push loses it.

    `prepare` takes the device's identity lock (waiting up to `lock_timeout_s`), `close`
    stops the app if the session started it and releases the lock.
    """

    def __init__(
        self,
        factory: DeviceFactory,
        options: HarnessOptions,
        announce: Announce,
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        cancel: threading.Event | None = None,
    ):
        self._factory = factory
        self.options = options
        self.announce = announce
        self.lock_timeout_s = lock_timeout_s
        self.cancel = cancel
        self.device = factory(None)
        self.info: ops.DeviceInfo | None = None
        self._held = ExitStack()
        self._started_app = False

    @property
    def serial(self) -> str:
        return self.device.serial

    def deadline(self, what: str) -> ops.Deadline:
        return ops.Deadline(
            self.options.result_timeout_s,
            what=what,
            serial=self.serial,
            hint="raise --timeout, or check that the device still answers",
            cancel=self.cancel,
        )

    def close(self) -> None:
        try:
            if self._started_app:  # a quality pass or a cut-off run may have left it running
                stop_app(self.device, ops.WRAP_UP_S)
        finally:
            self._held.close()
            self.device.close()

    def prepare(self) -> ops.DeviceInfo:
        """Device facts, the device's lock, ABI check, the app at the right version, the
        leftovers of earlier runs removed, the work folder. Bounded by --timeout, apart from
        waiting for the lock and installing the app."""
        if self.info is not None:
            return self.info
        deadline = self.deadline("preparing the device")
        info = ops.device_info(self.device, deadline)
        self._lock(info, deadline)
        check_abi(info)
        if self.options.runner is RunnerKind.APP:
            ensure_app(self.device, self.options, self.announce, deadline)
        clean_leftovers(self.device, deadline, self.announce)
        ops.make_dir(self.device, app_contract.REMOTE_WORK_DIR, deadline)
        self.info = info
        return info

    def _lock(self, info: ops.DeviceInfo, deadline: ops.Deadline) -> None:
        """The lock of the device itself, whatever name it was reached by."""
        waited = time.monotonic()
        self._held.enter_context(
            device_lock(
                self.serial,
                self.lock_timeout_s,
                announce=self.announce,
                key=identity_key(self.serial, info.serialno),
                cancel=self.cancel,
            )
        )
        deadline.extend(time.monotonic() - waited)

    def run(self, model: ModelToBench, config: BenchConfig) -> dict[str, Any]:
        """One run: a record with the schema-valid result and the harness's own figures."""
        if self.info is None:
            self.prepare()
        assert self.info is not None
        started = time.monotonic()
        run_id = new_run_id()
        deadline = self.deadline(f"run {run_id}")
        thermal_before, battery_before = cooldown_gate(
            self.device, self.options, self.announce, deadline
        )
        remote_model = f"{app_contract.REMOTE_WORK_DIR}/{run_id}-{model.path.name}"
        app = self.options.runner is RunnerKind.APP
        push_started = time.monotonic()
        try:
            self.device, _ = ops.push_with_retries(
                self._reconnect,
                model.path,
                remote_model,
                timeout=self.options.push_timeout_s,
                retries=self.options.retries,
                announce=self.announce,
                sha256=model.sha256,
                deadline=deadline,
            )
            push_s = time.monotonic() - push_started
            if app:
                result = self._run_app(run_id, remote_model, config, deadline)
                # PSS of the app's process, read before the app is stopped.
                meminfo = ops.meminfo(self.device, limit=deadline.grace())
            else:  # benchmark_model is no app, its own figures stand
                result = self._run_benchmark_model(run_id, remote_model, config, deadline)
                meminfo = MemInfo(None, None, None, None)
        finally:
            if not end_run(self.device, run_id, remote_model, deadline.grace(), app=app):
                self.announce(
                    f"[{self.serial}] could not remove run {run_id}'s files from the device "
                    f"(it did not answer); what is left of {remote_model} the next bench on "
                    "this device removes"
                )
        wrap_up = deadline.grace()
        battery_after = ops.battery(self.device, wrap_up).temperature_c
        thermal_after = ops.thermal_status(self.device, wrap_up)
        return self._record(
            model,
            result,
            meminfo,
            started,
            push_s,
            (thermal_before, thermal_after),
            (battery_before, battery_after),
        )

    def _reconnect(self, old: Device | None) -> Device:
        if old is None:
            return self.device
        old.close()
        self.device = self._factory(old)
        return self.device

    def _run_app(
        self, run_id: str, remote_model: str, config: BenchConfig, deadline: ops.Deadline
    ) -> dict[str, Any]:
        device = self.device
        # Crashes count only from this run on: the log is cleared, and only this run's
        # process (its pid once started) is looked at.
        device.shell("logcat -c", deadline.timeout())
        command = am_start_command(run_id, remote_model, config)
        self._started_app = True
        started = device.shell(command, deadline.timeout(AM_START_TIMEOUT_S))
        am = parse_am_start(started.stdout)
        if not started.ok or not am.ok:
            raise AppError(
                f"the benchmark app did not start: {am.error or started.stdout.strip()}",
                hint="check the app is installed (`mobilize devices`) or reinstall it with --apk",
                serial=device.serial,
            )
        pid = ops.pidof(device, limit=deadline)
        text = wait_for_result(device, run_id, self.options, deadline, pid)
        try:
            result = json.loads(text)
        except json.JSONDecodeError as error:
            raise AppError(
                f"the app's result for run {run_id} is not JSON: {error}",
                hint="a bug in the app; the raw text was:\n" + text[:500],
                serial=device.serial,
            ) from error
        checked = check_result(result, device.serial)
        if checked["run_id"] != run_id:
            raise AppError(
                f"the app answered run {run_id} with a result for run {checked['run_id']}",
                hint="another tool may be driving the app; run again",
                serial=device.serial,
            )
        return checked

    def _run_benchmark_model(
        self, run_id: str, remote_model: str, config: BenchConfig, deadline: ops.Deadline
    ) -> dict[str, Any]:
        assert self.options.binary is not None  # checked in HarnessOptions
        result = benchmark_model.run_benchmark_model(
            self.device,
            self.options.binary,
            remote_model,
            config,
            deadline.timeout(self.options.result_timeout_s),
            run_id=run_id,
        )
        return check_result(result, self.device.serial)

    def _record(
        self,
        model: ModelToBench,
        result: dict[str, Any],
        meminfo,
        started: float,
        push_s: float,
        thermal: tuple,
        battery_c: tuple,
    ) -> dict[str, Any]:
        assert self.info is not None
        warnings: list[str] = []
        latency = result.get("latency") or {}
        samples = latency.get("samples") or []
        cv = coefficient_of_variation(samples) if samples else None
        if cv is not None and cv > self.options.cv_warning:
            warnings.append(
                f"latency varies a lot (CV {cv:.1%} > {self.options.cv_warning:.0%}):"
                " close other apps, let the phone cool, or raise --runs"
            )
        rose = _thermal_rose(result, thermal)
        if rose:
            warnings.append(
                f"the thermal status rose during the run ({rose}): later samples may be throttled"
            )
        memory = result.get("memory")
        pss_source = "app"
        if memory is not None and memory.get("pss") is None and meminfo.pss_kb is not None:
            memory["pss"] = float(meminfo.pss_kb)
            pss_source = "dumpsys meminfo"
        app_measuring_s = (
            sum(
                [
                    latency.get("init") or 0.0,
                    latency.get("first_inference") or 0.0,
                    *(latency.get("warmup") or []),
                    *samples,
                ]
            )
            / 1e6
        )
        wall_s = time.monotonic() - started
        return {
            "serial": self.serial,
            "created_at": now_iso(),
            "model_name": model.name,
            "model_path": str(model.path),
            "model_sha256": model.sha256,
            "target": model.target,
            "result": result,
            "harness": {
                "wall_s": wall_s,
                "push_s": push_s,
                "app_measuring_s": app_measuring_s,
                "overhead_s": max(0.0, wall_s - app_measuring_s),
                "pss_dumpsys_kb": meminfo.pss_kb,
                "pss_source": pss_source,
                "native_heap_dumpsys_kb": meminfo.native_heap_pss_kb,
                "battery_before_c": battery_c[0],
                "battery_after_c": battery_c[1],
                "thermal_before": thermal[0].label if thermal[0] is not None else None,
                "thermal_after": thermal[1].label if thermal[1] is not None else None,
                "cv": cv,
                "warnings": warnings,
                "device_info": {"serial": self.info.serial, **self.info.as_schema_dict()},
            },
        }


def _thermal_rose(result: dict[str, Any], harness_thermal: tuple) -> str | None:
    """'light -> moderate' when the thermal status was higher after the run than before."""
    app = result.get("thermal") or {}
    pairs = [
        (ThermalStatus.from_label(app.get("before")), ThermalStatus.from_label(app.get("after"))),
        harness_thermal,
    ]
    for before, after in pairs:
        if before is not None and after is not None and after > before:
            return f"{before.label} -> {after.label}"
    return None
