"""The bundled benchmark app as the emulated device runs it, driven like the harness does:
push a model, `am start` with the contract's extras, poll for the result JSON via run-as."""

from __future__ import annotations

import json
import shlex
import time

import jsonschema
import numpy as np
import pytest
from adb_shell.adb_device import AdbDeviceTcp

from mobilize.bench import app_contract
from mobilize.emulator.faults import ThermalStatus

pytestmark = pytest.mark.emulator

MODEL = f"{app_contract.REMOTE_WORK_DIR}/tiny model.tflite"
SCHEMA = json.loads(app_contract.RESULT_SCHEMA_PATH.read_text())


@pytest.fixture
def adb(emulated_device, host_key, tiny_model):
    device = AdbDeviceTcp(
        emulated_device.host, emulated_device.port, default_transport_timeout_s=10
    )
    device.connect(rsa_keys=[host_key.signer()], auth_timeout_s=5)
    device.push(str(tiny_model), MODEL)
    yield device
    device.close()


def start(
    adb, run_id: str, *, delegate: str = "cpu", runs: int = 7, model: str = MODEL, extra: str = ""
) -> str:
    return adb.shell(
        f"am start -W -S -n {app_contract.COMPONENT} "
        f"--es {app_contract.EXTRA_MODEL_PATH} {shlex.quote(model)} "
        f"--es {app_contract.EXTRA_DELEGATE} {delegate} --ei {app_contract.EXTRA_THREADS} 2 "
        f"--ei {app_contract.EXTRA_WARMUP_RUNS} 2 --ei {app_contract.EXTRA_NUM_RUNS} {runs} "
        f"--es {app_contract.EXTRA_GPU_PRECISION} fp16 "
        f"--es {app_contract.EXTRA_RUN_ID} {run_id} {extra}"
    )


def wait_for_result(adb, run_id: str, deadline_s: float = 60) -> dict | None:
    command = f"run-as {app_contract.PACKAGE} cat {app_contract.result_relative_path(run_id)}"
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        text = adb.shell(command)
        if text.startswith("{"):
            result = json.loads(text)
            jsonschema.validate(result, SCHEMA)
            return result
        time.sleep(0.1)
    return None


def test_cpu_run_writes_a_valid_result(adb, emulated_device, tiny_model) -> None:
    reply = start(adb, "run-cpu", runs=7)
    assert "Status: ok" in reply and "Complete" in reply
    result = wait_for_result(adb, "run-cpu")
    assert result["status"] == "ok" and result["runner"] == "emulator"
    latency = result["latency"]
    assert len(latency["samples"]) == 7 == latency["stats"]["count"]
    assert len(latency["warmup"]) == 2
    assert latency["init"] > 0 and latency["first_inference"] > 0
    assert latency["stats"]["min"] == min(latency["samples"])
    assert result["model"]["size_bytes"] == tiny_model.stat().st_size
    assert result["model"]["inputs"] == [
        {"name": result["model"]["inputs"][0]["name"], "shape": [1, 64, 64, 3], "dtype": "float32"}
    ]
    assert result["delegate"]["requested"] == "cpu" and result["delegate"]["applied"] is True
    assert result["delegate"]["name"] == "xnnpack"
    # conv + mean, both taken by one XNNPACK partition
    assert (result["delegate"]["nodes_delegated"], result["delegate"]["nodes_total"]) == (2, 2)
    assert result["delegate"]["partitions"] == 1 and result["delegate"]["fallback_ops"] == []
    assert result["memory"]["peak_rss"] > 10_000  # kB: a real process's high-water mark
    assert result["device"]["abi"] == "arm64-v8a" and result["device"]["sdk"] == 34
    assert result["runtime"]["app_version"] == app_contract.APP_VERSION_NAME
    log = adb.shell(f"logcat -d -s {app_contract.LOG_TAG}")
    assert "run_id=run-cpu status=ok" in log
    meminfo = adb.shell(f"dumpsys meminfo {app_contract.PACKAGE}")
    assert f"TOTAL PSS: {int(result['memory']['pss']):>8}" in meminfo


def test_gpu_request_runs_on_cpu_and_says_so(adb) -> None:
    start(adb, "run-gpu", delegate="gpu")
    result = wait_for_result(adb, "run-gpu")
    delegate = result["delegate"]
    assert result["config"]["delegate"] == "gpu"
    assert delegate["requested"] == "gpu" and delegate["applied"] is False
    assert delegate["name"] != "gpu" and delegate["nodes_delegated"] == 0
    assert "no GPU delegate on this device" in delegate["message"]


def test_missing_model_is_a_failure_status(adb) -> None:
    start(adb, "run-missing", model="/data/local/tmp/mobilize/absent.tflite")
    result = wait_for_result(adb, "run-missing")
    assert result["status"] == "model_not_found" and result["latency"] is None
    assert "absent.tflite" in result["message"]
    assert "run_id=run-missing status=model_not_found" in adb.shell("logcat -d")


def test_model_that_does_not_load(adb, emulated_device) -> None:
    adb.shell(f"echo garbage > {app_contract.REMOTE_WORK_DIR}/broken.tflite")
    start(adb, "run-broken", model=f"{app_contract.REMOTE_WORK_DIR}/broken.tflite")
    result = wait_for_result(adb, "run-broken")
    assert result["status"] == "model_load_failed" and result["latency"] is None
    emulated_device.faults.model_load_fails = True
    start(adb, "run-fault")
    assert wait_for_result(adb, "run-fault")["status"] == "model_load_failed"


def test_crash_leaves_fatal_exception_and_no_result(adb, emulated_device) -> None:
    emulated_device.faults.app_crash = True
    start(adb, "run-crash")
    assert emulated_device.device.apps.wait_idle(app_contract.PACKAGE, 60)
    log = adb.shell("logcat -d -s AndroidRuntime")
    assert "FATAL EXCEPTION: main" in log and f"Process: {app_contract.PACKAGE}" in log
    listing = adb.shell(f"run-as {app_contract.PACKAGE} ls files/results")
    assert "run-crash.json" not in listing


def test_thermal_status_rises_during_the_run(adb, emulated_device) -> None:
    emulated_device.faults.thermal_during_run = ThermalStatus.MODERATE
    assert "Thermal Status: 0" in adb.shell("dumpsys thermalservice")
    start(adb, "run-hot")
    result = wait_for_result(adb, "run-hot")
    assert result["thermal"] == {"before": "none", "after": "moderate"}
    assert "Thermal Status: 2" in adb.shell("dumpsys thermalservice")


def test_invalid_extras_give_invalid_arguments(adb) -> None:
    start(adb, "run-bad", delegate="tpu")
    result = wait_for_result(adb, "run-bad")
    assert (
        result["status"] == "invalid_arguments" and "delegate must be one of" in result["message"]
    )


def test_unknown_activity_is_an_am_error(adb) -> None:
    reply = adb.shell(f"am start -n {app_contract.PACKAGE}/.Nope; echo rc=$?")
    assert "Error type 3" in reply and "rc=1" in reply


def test_quality_inputs_produce_npy_outputs(adb, emulated_device, tmp_path, tiny_model) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(1)
    for name in ("astronaut.npy", "coffee.npy"):
        np.save(inputs / name, rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32))
        adb.push(str(inputs / name), f"{app_contract.REMOTE_WORK_DIR}/quality/in/{name}")
    # The app writes only into its own folder (as on a phone); the shell copies out with run-as.
    outputs_dir = f"{app_contract.APP_FILES_DIR}/quality/run-quality"
    extra = (
        f"--es {app_contract.EXTRA_QUALITY_INPUTS} {app_contract.REMOTE_WORK_DIR}/quality/in "
        f"--es {app_contract.EXTRA_QUALITY_OUTPUTS} {outputs_dir}"
    )
    start(adb, "run-quality", extra=extra)
    result = wait_for_result(adb, "run-quality")
    assert result["quality"] == {
        "outputs_dir": outputs_dir,
        "files": ["astronaut.npy", "coffee.npy"],
    }
    staged = f"{app_contract.REMOTE_WORK_DIR}/coffee.npy"
    adb.shell(f"run-as {app_contract.PACKAGE} cat {outputs_dir}/coffee.npy > {staged}")
    pulled = tmp_path / "out.npy"
    adb.pull(staged, str(pulled))
    output = np.load(pulled)
    from ai_edge_litert.interpreter import Interpreter

    reference = Interpreter(model_path=str(tiny_model))
    reference.allocate_tensors()
    reference.set_tensor(reference.get_input_details()[0]["index"], np.load(inputs / "coffee.npy"))
    reference.invoke()
    expected = reference.get_tensor(reference.get_output_details()[0]["index"])
    assert output.shape == (1, 64, 64, 1)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


def test_quality_outputs_outside_the_app_folder_are_refused(adb, emulated_device) -> None:
    outputs_dir = f"{app_contract.REMOTE_WORK_DIR}/quality/out"  # the shell's, not the app's
    extra = (
        f"--es {app_contract.EXTRA_QUALITY_INPUTS} {app_contract.REMOTE_WORK_DIR} "
        f"--es {app_contract.EXTRA_QUALITY_OUTPUTS} {outputs_dir}"
    )
    start(adb, "run-elsewhere", extra=extra)
    result = wait_for_result(adb, "run-elsewhere")
    assert result["status"] == "invalid_arguments"
    assert result["message"] == f"cannot open {outputs_dir}: Permission denied"
    assert not emulated_device.host_path(outputs_dir).exists()


def test_delegated_nodes_follow_partitions_and_name_fallbacks() -> None:
    from mobilize.emulator.app_worker import _delegate_info

    def op(index, name, inputs, outputs):
        return {"index": index, "op_name": name, "inputs": inputs, "outputs": outputs}

    # conv -> custom (not delegable) -> conv, XNNPACK takes the convs in two partitions
    ops = [
        op(0, "CONV_2D", [0, 1], [2]),
        op(1, "MY_CUSTOM", [2], [3]),
        op(2, "CONV_2D", [3, 4], [5]),
        op(3, "DELEGATE", [0, 1], [2]),
        op(4, "DELEGATE", [3, 4], [5]),
    ]
    info = _delegate_info("cpu", ops)
    assert (info["nodes_delegated"], info["nodes_total"], info["partitions"]) == (2, 3, 2)
    assert info["fallback_ops"] == ["MY_CUSTOM"]
    gpu = _delegate_info("gpu", ops)
    assert gpu["applied"] is False and gpu["nodes_delegated"] == 0


def test_force_stop_ends_the_app_process(adb) -> None:
    start(adb, "run-stop")
    assert wait_for_result(adb, "run-stop")["status"] == "ok"
    pid = adb.shell(f"pidof {app_contract.PACKAGE}").strip()
    assert pid.isdigit()  # the finished app stays cached, as on a phone
    assert f"** MEMINFO in pid {pid} [{app_contract.PACKAGE}] **" in adb.shell(
        f"dumpsys meminfo {app_contract.PACKAGE}"
    )
    assert (
        adb.shell(f"am force-stop {app_contract.PACKAGE}; pidof {app_contract.PACKAGE}; echo $?")
        == "1\n"
    )
    assert "No process found for" in adb.shell(f"dumpsys meminfo {app_contract.PACKAGE}")
