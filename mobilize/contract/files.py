"""Writing results: atomic files (temp file + os.replace), hashes, tool versions."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

TOOLS = ("mobilize", "torch", "onnx", "onnxsim", "onnx2tf", "tensorflow", "ai-edge-litert",
         "numpy")


def _plain_file_mode() -> int:
    # Read once at import: os.umask can only be read by setting it, which is not safe
    # while other threads (parallel device workers, the emulator) create files.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_PLAIN_FILE_MODE = _plain_file_mode()


def atomic_write_bytes(path: Path, content: bytes) -> None:
    """Write through a temp file and os.replace: readers see the old file or the new one,
    never half of it. The whole project writes its results through here.

    Only a regular file or a new path is replaced. A symlink, a FIFO or a device is
    written through instead: renaming over `/dev/stdout` or a named pipe would put a plain
    file in its place and the reader would get nothing; renaming over a symlink would
    replace the link, not the file it points to.
    """
    if not _replaceable(path):
        with open(path, "wb") as file:
            file.write(content)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private; give it the mode a plain open() would.
        os.chmod(temp, _PLAIN_FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _replaceable(path: Path) -> bool:
    try:
        mode = os.lstat(path).st_mode  # lstat: a symlink is seen as itself, not followed
    except FileNotFoundError:
        return True
    return stat.S_ISREG(mode)


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())


def atomic_write_png(path: Path, image: np.ndarray) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tool_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for tool in TOOLS:
        try:
            versions[tool] = version(tool)
        except PackageNotFoundError:
            versions[tool] = None
    return versions
