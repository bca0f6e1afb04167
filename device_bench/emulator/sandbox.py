"""The device's file system: a folder on the host that device paths map into.

Device paths are resolved lexically (".." cannot climb above "/") and the host path is then
checked to lie inside the sandbox after symlinks are followed, so nothing a host sends can
reach a file outside it. App data folders (/data/data/<package>) are private to their
package, as on a phone: the shell user gets "Permission denied" and needs `run-as`.
"""

from __future__ import annotations

import errno
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

SHELL_USER = "shell"
APP_DATA_ROOT = "/data/data"
STANDARD_DIRS = (
    "/data/local/tmp",
    "/data/app",
    "/data/data",
    "/data/system",
    "/sdcard",
    "/system/bin",
)


class DeviceFileError(OSError):
    """An error with the errno and device path a real device would report."""

    def __init__(self, code: int, device_path: str) -> None:
        super().__init__(code, os.strerror(code), device_path)
        self.device_path = device_path


@dataclass(frozen=True)
class Identity:
    """Who is asking: the shell user, or an app package (via run-as or the app itself)."""

    user: str = SHELL_USER
    cwd: str = "/"

    def with_cwd(self, cwd: str) -> Identity:
        return Identity(self.user, cwd)


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for directory in STANDARD_DIRS:
            (self.root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def normalize(device_path: str, cwd: str = "/") -> str:
        joined = posixpath.join(cwd, device_path) if device_path else cwd
        normalized = posixpath.normpath(joined)
        # normpath keeps a leading "//"; a device path has one root.
        return "/" + normalized.lstrip("/")

    def host_path(self, device_path: str, identity: Identity | None = None) -> Path:
        """Host path of a device path, checking containment and app-data privacy."""
        identity = identity or Identity()
        normalized = self.normalize(device_path, identity.cwd)
        self._check_access(normalized, identity)
        candidate = self.root / normalized.lstrip("/")
        resolved = candidate.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise DeviceFileError(errno.EACCES, normalized)
        return candidate

    @staticmethod
    def _check_access(normalized: str, identity: Identity) -> None:
        if normalized == APP_DATA_ROOT and identity.user == SHELL_USER:
            raise DeviceFileError(errno.EACCES, normalized)
        prefix = APP_DATA_ROOT + "/"
        if normalized.startswith(prefix):
            owner = normalized[len(prefix) :].split("/", 1)[0]
            if owner != identity.user:
                raise DeviceFileError(errno.EACCES, normalized)

    def app_data_dir(self, package: str) -> Path:
        return self.root / APP_DATA_ROOT.lstrip("/") / package

    def used_bytes(self) -> int:
        total = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_size
                except OSError:
                    continue
        return total
