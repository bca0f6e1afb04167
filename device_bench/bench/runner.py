"""Benchmark one model on one device: push, start the app, wait, pull, check, clean up.

A BenchSession holds one device connection for a series of runs. Every wait loops
against a deadline; every device call has a timeout; the pushed model is removed whatever
happens.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from mobilize.bench import app_contract, benchmark_model
from mobilize.bench.app_control import (
    AM_START_TIMEOUT_S,
    am_start_command,
    check_abi,
    cooldown_gate,
    ensure_app,
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
from mobilize.device.parse import MemInfo, ThermalStatus, parse_am_start
from mobilize.device.transports import quote
from mobilize.results.stats import coefficient_of_variation

Announce = Callable[[str], None]
DeviceFactory = Callable[[Device | None], Device]


def new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class BenchSession:
    """One device, a series of runs; reconnects through `factory` when a push loses it."""

    def __init__(self, factory: DeviceFactory, options: HarnessOptions, announce: Announce):
        self._factory = factory
        self.options = options
        self.announce = announce
        self.device = factory(None)
        self.info: ops.DeviceInfo | None = None

    @property
    def serial(self) -> str:
        return self.device.serial

    def close(self) -> None:
        self.device.close()

    def prepare(self) -> ops.DeviceInfo:
        """Device facts, ABI check, app installed at the right version, work folder."""
        self.info = ops.device_info(self.device)
        check_abi(self.info)
        if self.options.runner is RunnerKind.APP:
            ensure_app(self.device, self.options, self.announce)
        ops.make_dir(self.device, app_contract.REMOTE_WORK_DIR)
        return self.info

    def run(self, model: ModelToBench, config: BenchConfig) -> dict[str, Any]:
        """One run: a record with the schema-valid result and the harness's own figures."""
        if self.info is None:
            self.prepare()
        assert self.info is not None
        started = time.monotonic()
        run_id = new_run_id()
        thermal_before, battery_before = cooldown_gate(self.device, self.options, self.announce)
        remote_model = f"{app_contract.REMOTE_WORK_DIR}/{run_id}-{model.path.name}"
        push_started = time.monotonic()
        self.device, _ = ops.push_with_retries(
            self._reconnect,
            model.path,
            remote_model,
            timeout=self.options.push_timeout_s,
            retries=self.options.retries,
            announce=self.announce,
            sha256=model.sha256,
        )
        push_s = time.monotonic() - push_started
        try:
            if self.options.runner is RunnerKind.BENCHMARK_MODEL:
                result = self._run_benchmark_model(run_id, remote_model, config)
            else:
                result = self._run_app(run_id, remote_model, config)
            # PSS of the app's process; benchmark_model is no app, its own figures stand.
            meminfo = (
                ops.meminfo(self.device)
                if self.options.runner is RunnerKind.APP
                else MemInfo(None, None, None, None)
            )
        finally:
            ops.remove(self.device, remote_model)
        battery_after = ops.battery(self.device).temperature_c
        thermal_after = ops.thermal_status(self.device)
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
        return self._factory(old)

    def _run_app(self, run_id: str, remote_model: str, config: BenchConfig) -> dict[str, Any]:
        device = self.device
        device.shell("logcat -c", ops.SHORT_TIMEOUT_S)
        command = am_start_command(run_id, remote_model, config)
        started = device.shell(command, AM_START_TIMEOUT_S)
        am = parse_am_start(started.stdout)
        if not started.ok or not am.ok:
            raise AppError(
                f"the benchmark app did not start: {am.error or started.stdout.strip()}",
                hint="check the app is installed (`mobilize devices`) or reinstall it with --apk",
                serial=device.serial,
            )
        text = wait_for_result(device, run_id, self.options)
        try:
            result = json.loads(text)
        except json.JSONDecodeError as error:
            raise AppError(
                f"the app's result for run {run_id} is not JSON: {error}",
                hint="a bug in the app; the raw text was:\n" + text[:500],
                serial=device.serial,
            ) from error
        device.shell(
            f"run-as {quote(app_contract.PACKAGE)} rm -f "
            f"{quote(app_contract.result_relative_path(run_id))}",
            ops.SHORT_TIMEOUT_S,
        )
        checked = check_result(result, device.serial)
        if checked["run_id"] != run_id:
            raise AppError(
                f"the app answered run {run_id} with a result for run {checked['run_id']}",
                hint="another tool may be driving the app; run again",
                serial=device.serial,
            )
        return checked

    def _run_benchmark_model(
        self, run_id: str, remote_model: str, config: BenchConfig
    ) -> dict[str, Any]:
        assert self.options.binary is not None  # checked in HarnessOptions
        result = benchmark_model.run_benchmark_model(
            self.device,
            self.options.binary,
            remote_model,
            config,
            self.options.result_timeout_s,
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


