"""One root error and one exit-code table for the whole tool.

Every error a user can cause carries what they need to act on it: a message saying what
went wrong and a hint saying what to do next. The CLI prints both and exits with the
error's exit code; the traceback only shows with --debug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `mobilize` exits with, the same for every command (README, "Exit codes")."""

    OK = 0
    CONVERSION_FAILED = 1  # an export stage failed on the model itself
    BAD_INPUT = 2  # a path, shape, range, option or file the user gave
    DEVICE_ERROR = 3  # the phone, adb or the benchmark app failed
    TIMEOUT = 4  # a device operation ran past its deadline
    REGRESSION = 5  # a benchmark slower than its baseline by more than the margin
    QUALITY_GATE = 6  # a picture under --min-psnr: on the host (export) or on the phone
    INTERNAL_ERROR = 70  # EX_SOFTWARE: a bug in mobilize, not in the user's input
    INTERRUPTED = 130  # Ctrl-C


EXIT_INTERNAL_ERROR = ExitCode.INTERNAL_ERROR
EXIT_INTERRUPTED = ExitCode.INTERRUPTED


class MobilizeError(Exception):
    """Root of every error the CLI turns into a message and a non-zero exit."""

    exit_code: int = ExitCode.CONVERSION_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(MobilizeError):
    """Bad input from the user: a path, a shape, a range, an option."""

    exit_code = ExitCode.BAD_INPUT


class ConversionError(MobilizeError):
    """A stage of the export failed on the model itself: an op that cannot be converted or
    quantized, a graph the converter rejects. The message names the op and the node."""

    exit_code = ExitCode.CONVERSION_FAILED


class QualityGateError(MobilizeError):
    """The converted model draws too differently from PyTorch (below --min-psnr), measured
    on the host by the export or on the phone by the quality pass."""

    exit_code = ExitCode.QUALITY_GATE
