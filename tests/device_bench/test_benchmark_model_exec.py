"""A benchmark_model binary the device cannot execute is a device error, not a model failure.

The shell lines below are the ones Android's /system/bin/sh (mksh) and linker print, taken
from public bug reports (each with its address) and from mksh's own source; the exit codes
are mksh R59c's (the one Android ships): 1 for "not executable: NN-bit ELF file" (126 in
mksh after 2024), 126 for "can't execute" and a missing ELF interpreter, 127 for
"inaccessible or not found".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mobilize.bench import benchmark_model_exec as bmx
from mobilize.bench.benchmark_model import REMOTE_BINARY, run_benchmark_model
from mobilize.bench.benchmark_model_exec import exec_failure
from mobilize.bench.config import BenchConfig, Delegate
from mobilize.bench.fleet import raise_failed_runs
from mobilize.device.device import ShellResult
from mobilize.device.errors import AdbError, AppError
from mobilize.errors import ExitCode

SH = "/system/bin/sh"
CONFIG = BenchConfig(delegate=Delegate.CPU, threads=2, warmup_runs=1, num_runs=5)
HINT_END = "with --binary PATH, or use the bundled app runner (--runner app, the default)"

# (text as printed, the binary as run, exit code): the line exec_failure must return is the
# one naming the binary.
REAL_LINES = {
    # https://github.com/tensorflow/tensorflow/issues/42956 (an arm64 benchmark_model on a
    # 32-bit userspace; the next prompt shows exit code 1)
    "tf-42956-64-bit-elf": (
        "/system/bin/sh: ./benchmark_model: not executable: 64-bit ELF file",
        "./benchmark_model",
        1,
    ),
    # https://github.com/appknox/androidvncserver/issues/1
    "vnc-32-bit-elf": (
        "/system/bin/sh: ./androidvncserver: not executable: 32-bit ELF file",
        "./androidvncserver",
        1,
    ),
    # https://github.com/hyln9/VIKIROOT/issues/23
    "vikiroot-permission-denied": (
        "/system/bin/sh: /data/local/tmp/exploit: can't execute: Permission denied",
        "/data/local/tmp/exploit",
        126,
    ),
    # https://github.com/j0nk0/GetRoot-Android-DirtyCow/issues/2 (mksh reading a script:
    # the <stdin>[N] position comes before the name)
    "dirtycow-stdin-position": (
        "/system/bin/sh: <stdin>[3]: ./G1tR0oT: can't execute: Permission denied",
        "./G1tR0oT",
        126,
    ),
    # https://github.com/crmulliner/adbi/issues/16 (another mksh build's name)
    "adbi-tmp-mksh": ("tmp-mksh: ./hijack: can't execute: Permission denied", "./hijack", 126),
    # https://github.com/KhunHtetzNaing/ADB-OTG/issues/35 (the leading "/" lost in the report)
    "adb-otg-not-found": ("system/bin/sh: adb: inaccessible or not found", "adb", 127),
    # https://github.com/facebookarchive/caffe2/issues/1818 (an arm binary on an x86_64
    # emulator: the ELF interpreter it names is missing)
    "caffe2-1818-no-interpreter": (
        "/system/bin/sh: /data/local/tmp/speed_benchmark: No such file or directory",
        "/data/local/tmp/speed_benchmark",
        126,
    ),
    # https://github.com/XiaoMi/mace/issues/56 (the linker started it, its library is absent)
    "mace-56-cannot-link": (
        'CANNOT LINK EXECUTABLE "/data/local/tmp/mace_run/benchmark_model_static": library '
        '"libhexagon_controller.so" not found',
        "/data/local/tmp/mace_run/benchmark_model_static",
        1,
    ),
}

# What the binary prints when it ran and the model failed: the tool's own format strings
# (tests/android_app/data/error_invoke_failed.txt and error_model_missing.txt; the model's
# "No such file or directory" line is added, to check that a path other than the binary's
# is not taken for it).
INVOKE_FAILED = """INFO: STARTING!
INFO: Loaded model /data/local/tmp/mobilize/m.tflite
INFO: Initialized session in 3.1ms.
ERROR: tensorflow/lite/kernels/reshape.cc:92 num_input_elements != num_output_elements (1024 != 10)
ERROR: Node number 7 (RESHAPE) failed to invoke.
INFO: count=1 curr=412

ERROR: Benchmarking failed.
"""
MODEL_MISSING = """INFO: STARTING!
INFO: Graph: [/data/local/tmp/mobilize/missing.tflite]
ERROR: Could not open '/data/local/tmp/mobilize/missing.tflite'.
ERROR: Failed to mmap model /data/local/tmp/mobilize/missing.tflite
/data/local/tmp/mobilize/missing.tflite: No such file or directory
ERROR: Benchmarking failed.
"""


@pytest.mark.parametrize("case", sorted(REAL_LINES))
def test_real_shell_lines_are_read_as_exec_failures(case: str) -> None:
    line, binary, code = REAL_LINES[case]
    text = f"{line}\n"
    assert exec_failure(text, binary, code) == line
    assert exec_failure(text, binary, None) == line  # an adb without exit codes


@pytest.mark.parametrize("text", [INVOKE_FAILED, MODEL_MISSING, ""])
@pytest.mark.parametrize("code", [0, 1, None])
def test_what_the_tool_itself_prints_is_no_exec_failure(text: str, code: int | None) -> None:
    assert exec_failure(text, REMOTE_BINARY, code) is None


def test_exit_126_or_127_without_the_tool_is_an_exec_failure() -> None:
    assert exec_failure("", REMOTE_BINARY, 127) == "(no output; exit code 127)"
    assert exec_failure("sh: something odd\n", REMOTE_BINARY, 126) == "sh: something odd"
    # The tool ran (its first line): its own exit code is no shell's.
    assert exec_failure("INFO: STARTING!\n", REMOTE_BINARY, 127) is None


# --- through run_benchmark_model, on a scripted device ----------------------------------------


@dataclass
class ScriptedDevice:
    """Answers the calls run_benchmark_model makes; the benchmark line gets `ran`."""

    ran: ShellResult
    abi: str | None = "x86_64"
    serial: str = "emulator-5554"
    pushed: list[str] = field(default_factory=list)

    def push(self, local: Path, remote: str, timeout: float) -> None:
        self.pushed.append(remote)

    def shell(self, command: str, timeout: float) -> ShellResult:
        if command.startswith("chmod "):
            return ShellResult(command, 0, "")
        if command == "getprop":
            props = {"ro.product.model": "sdk_gphone64_x86_64", "ro.build.version.sdk": "34"}
            if self.abi:
                props.update({"ro.product.cpu.abi": self.abi,
                              "ro.product.cpu.abilist": f"{self.abi},x86"})
            return ShellResult(command, 0, "".join(f"[{k}]: [{v}]\n" for k, v in props.items()))
        if command.startswith("ls -l "):
            return ShellResult(command, 0, "-rw-rw-rw- 1 shell shell 5120 2026-01-01 00:00 m\n")
        if command.startswith(REMOTE_BINARY):
            return ShellResult(command, self.ran.exit_code, self.ran.stdout, self.ran.stderr)
        return ShellResult(command, 1, "", f"{SH}: {command.split()[0]}: inaccessible or not found")


def run(device: ScriptedDevice, tmp_path: Path) -> dict:
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF\x02")
    return run_benchmark_model(device, binary, "/data/local/tmp/mobilize/m.tflite", CONFIG, 60.0)


EXEC_CASES = {
    # name: (output, exit code, the quoted line)
    "126-permission-denied": (
        f"{SH}: {REMOTE_BINARY}: can't execute: Permission denied\n",
        126,
        f"{SH}: {REMOTE_BINARY}: can't execute: Permission denied",
    ),
    "1-not-executable-64-bit-elf": (  # mksh R59c's exit code
        f"{SH}: {REMOTE_BINARY}: not executable: 64-bit ELF file\n",
        1,
        f"{SH}: {REMOTE_BINARY}: not executable: 64-bit ELF file",
    ),
    "126-not-executable-64-bit-elf": (  # mksh since 2024
        f"{SH}: {REMOTE_BINARY}: not executable: 64-bit ELF file\n",
        126,
        f"{SH}: {REMOTE_BINARY}: not executable: 64-bit ELF file",
    ),
    "126-exec-format-error": (
        f"{SH}: {REMOTE_BINARY}: Exec format error\n",
        126,
        f"{SH}: {REMOTE_BINARY}: Exec format error",
    ),
    "127-not-found": (
        f"{SH}: {REMOTE_BINARY}: inaccessible or not found\n",
        127,
        f"{SH}: {REMOTE_BINARY}: inaccessible or not found",
    ),
}


@pytest.mark.parametrize("case", sorted(EXEC_CASES))
def test_a_binary_that_cannot_run_is_a_device_error(case: str, tmp_path: Path) -> None:
    output, code, line = EXEC_CASES[case]
    device = ScriptedDevice(ShellResult("", code, output))
    with pytest.raises(AdbError) as caught:
        run(device, tmp_path)
    error = caught.value
    assert error.exit_code == ExitCode.DEVICE_ERROR == 3
    assert error.message.splitlines()[0] == (
        f"[emulator-5554] the benchmark_model binary could not run on this device "
        f"(ABI x86_64): {line}"
    )
    assert f"  exit code: {code}" in error.message
    assert "stdout:" not in error.message  # the output was that one line, quoted above
    assert error.hint == (
        "push a benchmark_model built for Android on x86_64 (Google's prebuilt one: "
        f"android_x86_64_benchmark_model) {HINT_END}"
    )
    assert "did not run" not in str(error)
    assert device.pushed == [REMOTE_BINARY]


def test_the_shell_line_is_found_on_stderr_and_among_other_lines(tmp_path: Path) -> None:
    line = f"{SH}: {REMOTE_BINARY}: can't execute: Permission denied"
    device = ScriptedDevice(ShellResult("", 126, "some banner\n", line + "\n"), abi="arm64-v8a")
    with pytest.raises(AdbError) as caught:
        run(device, tmp_path)
    assert caught.value.message.splitlines()[0].endswith(f"(ABI arm64-v8a): {line}")
    assert "android_aarch64_benchmark_model" in caught.value.hint
    assert "  stdout: some banner" in caught.value.message  # more than the quoted line


def test_without_a_known_abi_the_hint_says_where_to_read_it(tmp_path: Path) -> None:
    device = ScriptedDevice(ShellResult("", 127, ""), abi=None)
    with pytest.raises(AdbError) as caught:
        run(device, tmp_path)
    assert caught.value.message.splitlines()[0] == (
        "[emulator-5554] the benchmark_model binary could not run on this device: "
        "(no output; exit code 127)"
    )
    assert caught.value.hint == (
        "push a benchmark_model built for Android on the device's ABI "
        f"(`adb shell getprop ro.product.cpu.abi`) {HINT_END}"
    )


def test_a_model_that_fails_in_a_binary_that_ran_keeps_the_old_message(tmp_path: Path) -> None:
    result = run(ScriptedDevice(ShellResult("", 1, INVOKE_FAILED)), tmp_path)
    assert result["status"] == "inference_failed"
    assert result["message"].startswith("benchmark_model: Node number 7 (RESHAPE) failed to invoke")
    assert result["device"]["abi"] == "x86_64"
    record = {"model_name": "m.tflite", "serial": "emulator-5554", "result": result}
    with pytest.raises(AppError) as caught:
        raise_failed_runs([record])
    assert caught.value.exit_code == ExitCode.DEVICE_ERROR
    assert caught.value.hint == "The model loaded but did not run: the message above says why."


def test_a_missing_model_is_still_the_model_s_failure(tmp_path: Path) -> None:
    result = run(ScriptedDevice(ShellResult("", 1, MODEL_MISSING)), tmp_path)
    assert result["status"] == "model_not_found"


def test_the_error_lives_with_the_exec_failure_check() -> None:
    assert bmx.cannot_run_error.__module__ == "mobilize.bench.benchmark_model_exec"
    assert bmx.exec_failure.__module__ == bmx.cannot_run_error.__module__


# --- end to end: `mobilize bench --runner benchmark-model` on the emulated device -------------


@pytest.mark.emulator
def test_bench_cli_on_the_emulated_device(tmp_path: Path, tiny_tflite: Path, capsys) -> None:
    # The emulated shell runs no pushed binary: it answers as mksh does for one it cannot
    # find ("inaccessible or not found", 127), so the run ends in the device error, stores
    # nothing, and still removes the pushed model.
    from mobilize.bench import app_contract
    from mobilize.cli import main
    from mobilize.emulator.testing import running_emulator

    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF not really")
    db = tmp_path / "results.db"
    with running_emulator(tmp_path / "device", accept_new_keys=True) as emu:
        code = main(["bench", str(tiny_tflite), "--serial", emu.serial, "--adb-key",
                     str(tmp_path / "keys" / "adbkey"), "--db", str(db), "--runs", "5",
                     "--warmup", "1", "--threads", "1", "--cooldown-timeout", "5",
                     "--auth-timeout", "5", "--timeout", "60", "--runner", "benchmark-model",
                     "--binary", str(binary)])
        err = capsys.readouterr().err
        work_dir = Path(emu.root) / app_contract.REMOTE_WORK_DIR.lstrip("/")
        left = sorted(p.name for p in work_dir.iterdir()) if work_dir.exists() else []
    assert code == ExitCode.DEVICE_ERROR
    assert (
        "the benchmark_model binary could not run on this device (ABI arm64-v8a): "
        f"{SH}: {REMOTE_BINARY}: inaccessible or not found"
    ) in err
    assert "android_aarch64_benchmark_model" in err and "--binary PATH" in err
    assert "did not run" not in err and "printed no timings" not in err
    assert left == []
    assert not db.exists() or _stored_runs(db) == 0


def _stored_runs(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
