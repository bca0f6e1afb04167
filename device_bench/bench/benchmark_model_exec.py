"""When the device cannot start Google's `benchmark_model` binary at all (benchmark_model.py).

A binary for another ABI, a glibc build, no execute permission, a missing ELF interpreter:
the shell or the linker refuses it before the tool prints anything, so there is no result of
the model to parse. exec_failure reads that refusal from the shell's output (pure: text in,
the refusing line out); cannot_run_error turns it into a device error (AdbError) that names
the device's ABI and the prebuilt binary to push instead (PREBUILT_NAMES).
"""

from __future__ import annotations

import re

from mobilize.device.device import ShellResult
from mobilize.device.errors import AdbError

# How Android's /system/bin/sh (mksh) and its linker say that a program could not start,
# after "NAME: " (mksh: "/system/bin/sh: NAME: ..."): wrong ELF class or machine ("not
# executable: 64-bit ELF file"; exit 1 up to mksh R59c, 126 later), no execute permission
# or a noexec mount ("can't execute: Permission denied", 126), no such file
# ("inaccessible or not found", 127), and an ELF interpreter the device lacks (a glibc or
# other-ABI build: "No such file or directory", 126). Source: exec.c of
# https://github.com/MirBSD/mksh (tag mksh-R59c, and its 2024 change 756ab469).
_EXEC_REFUSALS = (
    r"not executable: .*",
    r"can't execute: .*",
    r"cannot execute.*",
    r"inaccessible or not found",
    r"not found",
    r"No such file or directory",
    r"Exec format error",
    r"Permission denied",
)
EXIT_CANNOT_EXECUTE = 126  # POSIX: found but could not be executed
EXIT_NOT_FOUND = 127  # POSIX: no such command
# The tool's first line: it printed it, so it ran.
STARTED = "STARTING!"


def exec_failure(text: str, binary: str, exit_code: int | None = None) -> str | None:
    """The device's line saying `binary` itself could not be executed, else None.

    Read from the shell's message naming the binary (the path as run or its file name) or
    the linker's "CANNOT LINK EXECUTABLE", wherever the exit code got lost; an exit code of
    126 or 127 with nothing from the tool stands for such a line too (the last one printed,
    or a note of the code where it printed nothing).
    """
    name = re.escape(binary.rpartition("/")[2])
    shell = re.compile(rf"(?:^|[\s:])(?:\S*/)?{name}: (?:{'|'.join(_EXEC_REFUSALS)})\s*$")
    linker = re.compile(rf"CANNOT LINK EXECUTABLE \"(?:\S*/)?{name}\"")
    for line in text.splitlines():
        stripped = line.strip()
        if shell.search(stripped) or linker.search(stripped):
            return stripped
    if exit_code in (EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND) and STARTED not in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else f"(no output; exit code {exit_code})"
    return None


# The name of Google's prebuilt benchmark_model for each Android ABI (tensorflow/lite/tools/
# benchmark's nightly downloads).
PREBUILT_NAMES = {
    "arm64-v8a": "android_aarch64_benchmark_model",
    "armeabi-v7a": "android_arm_benchmark_model",
    "x86_64": "android_x86_64_benchmark_model",
    "x86": "android_x86_benchmark_model",
}


def cannot_run_error(
    shell_line: str,
    *,
    abi: str | None,
    command: str,
    ran: ShellResult,
    serial: str | None,
) -> AdbError:
    """The device error for a benchmark_model binary the device could not execute (another
    ABI, a glibc build, no execute permission): the shell's own line, the device's ABI
    (ro.product.cpu.abi) and what to push instead."""
    on = f"this device (ABI {abi})" if abi else "this device"
    built_for = abi or "the device's ABI (`adb shell getprop ro.product.cpu.abi`)"
    message = f"the benchmark_model binary could not run on {on}: {shell_line}"
    output = (ran.stdout + "\n" + ran.stderr).strip()
    prebuilt = f" (Google's prebuilt one: {PREBUILT_NAMES[abi]})" if abi in PREBUILT_NAMES else ""
    return AdbError(
        message,
        command=command,
        serial=serial,
        exit_code=ran.exit_code,
        # The output adds to the message only where it holds more than the quoted line.
        stdout=ran.stdout if output != shell_line else "",
        stderr=ran.stderr if output != shell_line else "",
        hint=f"push a benchmark_model built for Android on {built_for}{prebuilt} with "
        "--binary PATH, or use the bundled app runner (--runner app, the default)",
    )
