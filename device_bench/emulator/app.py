"""The bundled benchmark app as the emulated device runs it.

`am start -n dev.mobilize.bench/.BenchmarkActivity` with the intent extras of
app_contract starts a worker process (app_worker) that runs the pushed model with LiteRT
on the host CPU. When it ends, this side adds what only the "phone" knows (thermal status
after the run, the finish time), publishes the result JSON atomically in the app's files
folder, and logs one line with the run id and status; a crash leaves a FATAL EXCEPTION in
logcat and no result, as on a phone.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilize.bench import app_contract
from mobilize.emulator.logcat import Priority
from mobilize.emulator.sandbox import Access, DeviceFileError, Identity

if TYPE_CHECKING:
    from mobilize.emulator.device import EmulatedDevice

_PIDS = itertools.count(12000)
RUNTIME_NAME = "litert"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _litert_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - a missing version is reported as null
        return None


class IntentError(Exception):
    """`am start` could not start the activity (printed as am does)."""


@dataclass
class AppProcess:
    package: str
    pid: int
    started: float = field(default_factory=time.time)
    worker: subprocess.Popen | None = None
    memory: dict[str, Any] | None = None  # the last figures, kept while the process is cached
    finished: threading.Event = field(default_factory=threading.Event)
    # Set by force-stop: the process is dead; its run neither publishes nor "crashes".
    stopped: bool = False
    run_thread: threading.Thread | None = None
    guard: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class BenchRequest:
    """The intent extras of one run, checked as the app checks them."""

    model_path: str
    delegate: str
    threads: int
    warmup_runs: int
    num_runs: int
    gpu_precision: str
    run_id: str
    quality_inputs_dir: str | None
    quality_outputs_dir: str | None

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> tuple[BenchRequest | None, str | None]:
        """The request, or None and the reason it is invalid."""

        def get(name, kind, default=None):
            value = extras.get(name, default)
            return value if value is None or isinstance(value, kind) else None

        run_id = get(app_contract.EXTRA_RUN_ID, str)
        values = {
            "model_path": get(app_contract.EXTRA_MODEL_PATH, str),
            "delegate": get(app_contract.EXTRA_DELEGATE, str, "cpu"),
            "threads": get(app_contract.EXTRA_THREADS, int, 1),
            "warmup_runs": get(app_contract.EXTRA_WARMUP_RUNS, int, 1),
            "num_runs": get(app_contract.EXTRA_NUM_RUNS, int, 50),
            "gpu_precision": get(app_contract.EXTRA_GPU_PRECISION, str, "fp16"),
            "run_id": run_id,
            "quality_inputs_dir": get(app_contract.EXTRA_QUALITY_INPUTS, str),
            "quality_outputs_dir": get(app_contract.EXTRA_QUALITY_OUTPUTS, str),
        }
        problems = []
        if not run_id or "/" in run_id:
            problems.append("run_id must be a non-empty name without '/'")
        if not values["model_path"]:
            problems.append("model_path is missing")
        if values["delegate"] not in app_contract.DELEGATES:
            problems.append(f"delegate must be one of {', '.join(app_contract.DELEGATES)}")
        if values["gpu_precision"] not in app_contract.GPU_PRECISIONS:
            problems.append(
                f"gpu_precision must be one of {', '.join(app_contract.GPU_PRECISIONS)}"
            )
        if values["threads"] is None or values["threads"] < 1:
            problems.append("threads must be an integer >= 1")
        if values["warmup_runs"] is None or values["warmup_runs"] < 0:
            problems.append("warmup_runs must be an integer >= 0")
        if values["num_runs"] is None or values["num_runs"] < 1:
            problems.append("num_runs must be an integer >= 1")
        if bool(values["quality_inputs_dir"]) != bool(values["quality_outputs_dir"]):
            problems.append("quality_inputs_dir and quality_outputs_dir go together")
        if problems:
            return None, "; ".join(problems)
        return cls(**values), None


class AppManager:
    def __init__(self, device: EmulatedDevice) -> None:
        self.device = device
        self._processes: dict[str, AppProcess] = {}
        self._lock = threading.Lock()

    # --- processes -------------------------------------------------------------------
    def pid_of(self, package: str) -> int | None:
        with self._lock:
            process = self._processes.get(package)
            return process.pid if process else None

    def process(self, package: str) -> AppProcess | None:
        with self._lock:
            return self._processes.get(package)

    def running(self) -> list[AppProcess]:
        with self._lock:
            return list(self._processes.values())

    def force_stop(self, package: str) -> None:
        """As `am force-stop` on a phone: the process is dead when this returns, its run
        writes nothing more, and the log says it was stopped (not that it crashed)."""
        with self._lock:
            process = self._processes.pop(package, None)
        if process is None:
            return
        with process.guard:
            process.stopped = True
            worker = process.worker
        self.device.logcat.log(
            Priority.INFO,
            "ActivityManager",
            f"Force stopping {package} appid=10100 user=0: from pid 2000",
            pid=1500,
        )
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        thread = process.run_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def stop_all(self) -> None:
        for process in self.running():
            self.force_stop(process.package)

    def wait_idle(self, package: str, timeout: float) -> bool:
        """Test helper: wait until the app's current run has finished."""
        process = self.process(package)
        return process is None or process.finished.wait(timeout)

    # --- activities ------------------------------------------------------------------
    def start_activity(
        self, package: str, activity: str, extras: dict[str, Any], stop_first: bool
    ) -> AppProcess:
        info = self.device.packages.get(package)
        full_activity = package + activity if activity.startswith(".") else activity
        if info is None or (
            package == app_contract.PACKAGE and full_activity != package + app_contract.ACTIVITY
        ):
            raise IntentError(f"Activity class {{{package}/{full_activity}}} does not exist.")
        if stop_first:
            self.force_stop(package)
        with self._lock:
            process = self._processes.get(package)
            busy = (
                process is not None and process.worker is not None and process.worker.poll() is None
            )
            if process is None:
                process = AppProcess(package, next(_PIDS))
                self._processes[package] = process
        self.device.logcat.log(
            Priority.INFO,
            "ActivityTaskManager",
            f"START u0 {{cmp={package}/{activity}}} from uid 2000",
            pid=1500,
        )
        if package == app_contract.PACKAGE and not busy:
            self._start_benchmark(process, extras)
        return process

    def _start_benchmark(self, process: AppProcess, extras: dict[str, Any]) -> None:
        process.finished.clear()
        request, problem = BenchRequest.from_extras(extras)
        run_id = (
            extras.get(app_contract.EXTRA_RUN_ID)
            if isinstance(extras.get(app_contract.EXTRA_RUN_ID), str)
            else None
        )
        if request is None:
            self._log_app(
                process,
                Priority.ERROR,
                f"run_id={run_id or '-'} status=invalid_arguments message={problem}",
            )
            if run_id and "/" not in run_id:
                self._publish(
                    process,
                    run_id,
                    self._failure_result(run_id, extras, "invalid_arguments", problem),
                )
            process.finished.set()
            return
        thread = threading.Thread(target=self._run_benchmark, args=(process, request), daemon=True)
        process.run_thread = thread
        thread.start()

    def _log_app(self, process: AppProcess, priority: Priority, message: str) -> None:
        self.device.logcat.log(priority, app_contract.LOG_TAG, message, pid=process.pid)

    def _result_template(
        self, run_id: str, config: dict[str, Any], model_path: str
    ) -> dict[str, Any]:
        device = self.device
        props = device.profile.properties
        info = device.packages.get(app_contract.PACKAGE)
        return {
            "schema_version": app_contract.RESULT_SCHEMA_VERSION,
            "run_id": run_id,
            "status": "ok",
            "message": None,
            "runner": "emulator",
            "config": config,
            "model": {
                "path": model_path,
                "size_bytes": None,
                "sha256": None,
                "inputs": [],
                "outputs": [],
            },
            "latency": None,
            "memory": None,
            "delegate": {
                "requested": config["delegate"],
                "applied": False,
                "name": None,
                "nodes_delegated": None,
                "nodes_total": None,
                "partitions": None,
                "fallback_ops": [],
                "message": None,
            },
            "thermal": {"before": device.thermal.status().label, "after": None},
            "device": {
                "model": props.get("ro.product.model"),
                "manufacturer": props.get("ro.product.manufacturer"),
                "board": props.get("ro.product.board"),
                "soc": props.get("ro.soc.model"),
                "abi": props.get("ro.product.cpu.abi"),
                "sdk": device.profile.sdk,
                "android_version": props.get("ro.build.version.release"),
                "gpu_renderer": device.profile.gpu.renderer,
            },
            "runtime": {
                "name": RUNTIME_NAME,
                "version": _litert_version(),
                "app_version": info.version_name if info else None,
            },
            "quality": None,
            "started_at": _now(),
            "finished_at": None,
        }

    def _failure_result(
        self, run_id: str, extras: dict[str, Any], status: str, message: str | None
    ) -> dict[str, Any]:
        def pick(name, choices, default):
            value = extras.get(name)
            return value if value in choices else default

        def number(name, minimum, default):
            value = extras.get(name)
            return value if isinstance(value, int) and value >= minimum else default

        config = {
            "delegate": pick(app_contract.EXTRA_DELEGATE, app_contract.DELEGATES, "cpu"),
            "threads": number(app_contract.EXTRA_THREADS, 1, 1),
            "warmup_runs": number(app_contract.EXTRA_WARMUP_RUNS, 0, 0),
            "num_runs": number(app_contract.EXTRA_NUM_RUNS, 1, 1),
            "gpu_precision": pick(
                app_contract.EXTRA_GPU_PRECISION, app_contract.GPU_PRECISIONS, "fp16"
            ),
        }
        result = self._result_template(
            run_id, config, str(extras.get(app_contract.EXTRA_MODEL_PATH) or "")
        )
        result.update(status=status, message=message, finished_at=_now())
        result["thermal"]["after"] = self.device.thermal.status().label
        return result

    def _run_benchmark(self, process: AppProcess, request: BenchRequest) -> None:
        device = self.device
        app_identity = Identity(app_contract.PACKAGE, app_contract.APP_FILES_DIR)
        config = {
            "delegate": request.delegate,
            "threads": request.threads,
            "warmup_runs": request.warmup_runs,
            "num_runs": request.num_runs,
            "gpu_precision": request.gpu_precision,
        }
        template = self._result_template(request.run_id, config, request.model_path)
        self._log_app(
            process,
            Priority.INFO,
            f"run_id={request.run_id} status=started model={request.model_path}"
            f" delegate={request.delegate}",
        )
        thermal_fault = device.faults.thermal_during_run
        if thermal_fault is not None:
            device.thermal.raise_to(thermal_fault, None)
        try:
            worker_request = self._worker_request(request, template, app_identity)
        except DeviceFileError as error:
            # The model, or a quality folder the app may not use (it writes only its own).
            model = device.sandbox.normalize(request.model_path, app_identity.cwd)
            result = dict(
                template,
                status="model_not_found" if error.device_path == model else "invalid_arguments",
                message=f"cannot open {error.device_path}: {error.strerror}",
            )
            self._finish(process, request.run_id, result, thermal_fault)
            return
        with tempfile.TemporaryDirectory(prefix="mobilize-app-") as scratch:
            request_path = Path(scratch) / "request.json"
            worker_request["partial_path"] = str(Path(scratch) / "partial.json")
            request_path.write_text(json.dumps(worker_request), encoding="utf-8")
            with process.guard:
                if process.stopped:  # force-stopped before it got going
                    process.finished.set()
                    return
                worker = subprocess.Popen(
                    [sys.executable, "-m", "mobilize.emulator.app_worker", str(request_path)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    cwd=str(Path(__file__).resolve().parents[2]),
                )
                process.worker = worker
            _, stderr = worker.communicate()
            if process.stopped:  # killed by force-stop: a phone logs no crash for that
                process.finished.set()
                return
            partial = Path(worker_request["partial_path"])
            if worker.returncode != 0 or not partial.exists():
                self._crash(
                    process,
                    request,
                    stderr.decode("utf-8", "replace"),
                    worker.returncode,
                    thermal_fault,
                )
                return
            result = json.loads(partial.read_text(encoding="utf-8"))
        self._finish(process, request.run_id, result, thermal_fault)

    def _worker_request(
        self, request: BenchRequest, template: dict[str, Any], identity: Identity
    ) -> dict[str, Any]:
        sandbox = self.device.sandbox
        worker_request: dict[str, Any] = {
            "config": template["config"],
            "result_template": template,
            "model_host_path": str(sandbox.host_path(request.model_path, identity)),
            "fail_model_load": self.device.faults.model_load_fails,
            "crash": self.device.faults.app_crash,
        }
        if request.quality_inputs_dir and request.quality_outputs_dir:
            worker_request["quality_inputs_host"] = str(
                sandbox.host_path(request.quality_inputs_dir, identity)
            )
            worker_request["quality_outputs_host"] = str(
                sandbox.host_path(request.quality_outputs_dir, identity, Access.WRITE)
            )
            worker_request["quality_outputs_device"] = sandbox.normalize(
                request.quality_outputs_dir, identity.cwd
            )
        return worker_request

    def _finish(
        self, process: AppProcess, run_id: str, result: dict[str, Any], thermal_fault
    ) -> None:
        if thermal_fault is not None:
            self.device.thermal.raise_to(thermal_fault, self.device.faults.thermal_recovery_seconds)
        result["thermal"]["after"] = self.device.thermal.status().label
        result["finished_at"] = _now()
        process.memory = result.get("memory")
        with process.guard:
            if process.stopped:
                process.finished.set()
                return
            path = self._publish(process, run_id, result)
        priority = Priority.INFO if result["status"] == app_contract.STATUS_OK else Priority.ERROR
        message = f" message={result['message']}" if result.get("message") else ""
        self._log_app(
            process, priority, f"run_id={run_id} status={result['status']} result={path}{message}"
        )
        process.finished.set()

    def _publish(self, process: AppProcess, run_id: str, result: dict[str, Any]) -> str:
        device_path = f"{app_contract.APP_FILES_DIR}/{app_contract.RESULTS_SUBDIR}/{run_id}.json"
        host = self.device.sandbox.host_path(
            device_path, Identity(app_contract.PACKAGE), Access.WRITE
        )
        host.parent.mkdir(parents=True, exist_ok=True)
        temporary = host.with_name(f".{run_id}.json.tmp")
        temporary.write_text(json.dumps(result, indent=1), encoding="utf-8")
        os.replace(temporary, host)
        return device_path

    def _crash(
        self,
        process: AppProcess,
        request: BenchRequest,
        stderr: str,
        code: int | None,
        thermal_fault,
    ) -> None:
        if thermal_fault is not None:
            self.device.thermal.raise_to(thermal_fault, self.device.faults.thermal_recovery_seconds)
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        cause = lines[-1] if lines else f"process exited with code {code}"
        if not cause.startswith("java."):
            cause = f"java.lang.RuntimeException: {cause}"
        log = self.device.logcat
        for text in (
            "FATAL EXCEPTION: main",
            f"Process: {app_contract.PACKAGE}, PID: {process.pid}",
            "java.lang.RuntimeException: Unable to start activity "
            f"ComponentInfo{{{app_contract.COMPONENT}}}: {cause}",
            "\tat android.app.ActivityThread.performLaunchActivity(ActivityThread.java:3782)",
            "\tat android.app.ActivityThread.handleLaunchActivity(ActivityThread.java:3922)",
            f"Caused by: {cause}",
            f"\tat {app_contract.PACKAGE}.BenchmarkActivity.onCreate(BenchmarkActivity.java:57)",
        ):
            log.log(Priority.ERROR, "AndroidRuntime", text, pid=process.pid)
        log.log(
            Priority.INFO,
            "ActivityManager",
            f"Process {app_contract.PACKAGE} (pid {process.pid}) has died: fg  TOP",
            pid=1500,
        )
        with self._lock:
            if self._processes.get(process.package) is process:
                del self._processes[process.package]
        process.finished.set()
