"""One root error for the whole tool.

Every error a user can cause carries what they need to act on it: a message saying what
went wrong and a hint saying what to do next. The CLI prints both and exits with the
error's exit code; the traceback only shows with --debug.
"""

from __future__ import annotations


class MobilizeError(Exception):
    """Root of every error the CLI turns into a message and a non-zero exit."""

    exit_code: int = 1

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

    exit_code = 2


class ConversionError(MobilizeError):
    """A stage of the export failed on the model itself: an op that cannot be converted or
    quantized, a graph the converter rejects. The message names the op and the node."""

    exit_code = 1


class QualityGateError(MobilizeError):
    """The exported model draws too differently from PyTorch (below --min-psnr)."""

    exit_code = 3
