"""Errors of the device harness: each says what failed on which device and what to do next.

All derive from mobilize.errors.MobilizeError so the CLI prints a message and a hint and
exits non-zero. An AdbError keeps the command, its output, its exit code and the serial,
because a failing device command is only debuggable with all of them.
"""

from __future__ import annotations

from mobilize.errors import ExitCode, MobilizeError, UsageError

EXIT_DEVICE_ERROR = ExitCode.DEVICE_ERROR
EXIT_TIMEOUT = ExitCode.TIMEOUT
EXIT_REGRESSION = ExitCode.REGRESSION


class DeviceError(MobilizeError):
    """Something went wrong talking to a device."""

    exit_code = EXIT_DEVICE_ERROR

    def __init__(self, message: str, hint: str | None = None, *, serial: str | None = None):
        if serial and serial not in message:
            message = f"[{serial}] {message}"
        super().__init__(message, hint)
        self.serial = serial


class AdbError(DeviceError):
    """A device command failed: carries the command line, its output and its exit code."""

    def __init__(
        self,
        message: str,
        *,
        command: str,
        serial: str | None,
        exit_code: int | None = None,
        stdout: str = "",
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        details = [message, f"  command: {command}"]
        if exit_code is not None:
            details.append(f"  exit code: {exit_code}")
        if stdout.strip():
            details.append(f"  stdout: {_clip(stdout)}")
        if stderr.strip():
            details.append(f"  stderr: {_clip(stderr)}")
        super().__init__("\n".join(details), hint, serial=serial)
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        self.device_exit_code = exit_code


class DeviceTimeoutError(DeviceError):
    """A device call or a wait did not finish before its deadline."""

    exit_code = EXIT_TIMEOUT

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        serial: str | None = None,
        command: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if timeout_s is not None:
            message = f"{message} (after {timeout_s:g} s)"
        if command:
            message = f"{message}\n  command: {command}"
        super().__init__(message, hint, serial=serial)
        self.command = command
        self.timeout_s = timeout_s


class NoDeviceError(DeviceError):
    """No device is attached or reachable."""


class DeviceChoiceError(UsageError):
    """Several devices and none chosen, or a chosen serial that is not attached."""


class UnauthorizedError(DeviceError):
    """The device did not accept this computer's key (nobody tapped "Allow")."""


class UsbBusyError(DeviceError):
    """Another program (usually an adb server) holds the phone's USB interface."""


class DeviceLostError(DeviceError):
    """The connection dropped in the middle of an operation."""


class AppError(DeviceError):
    """The benchmark app crashed, is missing, or reported a failure."""


class ModelError(UsageError):
    """The model given to bench is missing or cannot be benchmarked."""


class RegressionError(MobilizeError):
    """A benchmark is slower than its baseline by more than the allowed margin."""

    exit_code = EXIT_REGRESSION


def _clip(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit // 2] + "\n  ...\n" + text[-limit // 2 :]
