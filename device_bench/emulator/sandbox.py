"""The device's file system: a folder on the host that device paths map into.

Every host path comes from `Sandbox.join`: device paths are resolved lexically ("..", cannot
climb above "/") and the host path, its folder and its target after symlinks are checked to
lie inside the sandbox, so nothing a host sends can reach a file outside it.

On top of that, the ownership a phone's permissions and SELinux give, applied to every path
an operation touches (`Access.READ` to open, list or stat; `Access.WRITE` to create, change,
remove or rename the entry):

- /data/data/<pkg> and below belong to <pkg>: the shell user gets "Permission denied" and
  needs `run-as`; an app writes only below its own folder, never the folder itself.
- /data/data, /data/misc (adb_keys) and /data/system (the package list) belong to system:
  neither the shell nor an app reads or writes them.
- The shell writes only below /data/local/tmp and /sdcard; everything else (/, /data, /system,
  /data/app, ...) is read-only to it.
- Removing or moving a folder that contains a protected folder is refused (`host_tree`).
"""

from __future__ import annotations

import enum
import errno
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

SHELL_USER = "shell"
APP_DATA_ROOT = "/data/data"
# Folders only system reads or writes (adbd's keys, the package manager's list).
SYSTEM_PRIVATE = ("/data/misc", "/data/system")
# Where the shell user may create, change and remove files (below, not the folders).
SHELL_WRITABLE = ("/data/local/tmp", "/sdcard")
STANDARD_DIRS = (
    "/data/local/tmp",
    "/data/app",
    "/data/data",
    "/data/misc/adb",
    "/data/system",
    "/sdcard",
    "/system/bin",
)
# The standard folders and all their parents: never removed or moved, nor anything holding one.
PROTECTED_DIRS = tuple(
    sorted(
        {
            "/".join(directory.split("/")[:end]) or "/"
            for directory in STANDARD_DIRS
            for end in range(2, directory.count("/") + 2)
        }
    )
)
MAX_PACKAGE_NAME = 223  # PackageParser's limit (a file name with room for suffixes)


class Access(enum.Enum):
    READ = "read"  # open, list, stat
    WRITE = "write"  # create, change, remove or rename the entry


class DeviceFileError(OSError):
    """An error with the errno and device path a real device would report."""

    def __init__(self, code: int, device_path: str) -> None:
        super().__init__(code, os.strerror(code), device_path)
        self.device_path = device_path


class InvalidPackageName(ValueError):
    """A package name Android would refuse; the message is PackageParser's reason."""


@dataclass(frozen=True)
class Identity:
    """Who is asking: the shell user, or an app package (via run-as or the app itself)."""

    user: str = SHELL_USER
    cwd: str = "/"

    def with_cwd(self, cwd: str) -> Identity:
        return Identity(self.user, cwd)


def package_name_error(name: str) -> str | None:
    """Why `name` is no package name, in PackageParser's words; None when it is one.

    A package name is two or more dot-separated Java identifiers of ASCII letters, digits and
    underscores, each starting with a letter ("com.example.app"). Android also lets an empty
    segment through; we do not, so no name can be ".", ".." or a path of any kind.
    """
    front = True  # at the start of a segment
    separators = 0
    for char in name:
        if "a" <= char <= "z" or "A" <= char <= "Z":
            front = False
        elif not front and ("0" <= char <= "9" or char == "_"):
            continue
        elif char == "." and not front:
            separators += 1
            front = True
        else:
            return f"bad character '{char}'"
    if separators == 0:
        return "must have at least one '.' separator"
    if front:
        return "bad character '.'"
    if len(name) > MAX_PACKAGE_NAME:
        return f"the length of the name is greater than {MAX_PACKAGE_NAME}"
    return None


def check_package_name(name: str) -> str:
    error = package_name_error(name)
    if error is not None:
        raise InvalidPackageName(error)
    return name


def _within(path: str, folder: str) -> bool:
    """`path` is `folder` or lies below it (both normalized device paths)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _below(path: str, folder: str) -> bool:
    return path != folder and _within(path, folder)


def permitted(path: str, user: str, access: Access) -> bool:
    """May `user` (the shell or a package) read or write the normalized device path?"""
    if _below(path, APP_DATA_ROOT):
        if user == SHELL_USER:
            return False
        owner_root = "/".join(path.split("/")[:4])  # /data/data/<pkg>
        if owner_root != f"{APP_DATA_ROOT}/{user}":
            return False
        return access is Access.READ or path != owner_root
    if any(_within(path, folder) for folder in (APP_DATA_ROOT, *SYSTEM_PRIVATE)):
        return False
    if access is Access.READ:
        return True
    return user == SHELL_USER and any(_below(path, folder) for folder in SHELL_WRITABLE)


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for directory in STANDARD_DIRS:
            self.join(directory).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def normalize(device_path: str, cwd: str = "/") -> str:
        joined = posixpath.join(cwd, device_path) if device_path else cwd
        normalized = posixpath.normpath(joined)
        # normpath keeps a leading "//"; a device path has one root.
        return "/" + normalized.lstrip("/")

    def join(self, device_path: str) -> Path:
        """The host path of a device path, with no ownership check: it never leaves the root.

        The one place device paths become host paths. Raises EACCES (as a phone would for
        what lies outside its file system) when the path, its folder or, through symlinks,
        its target is outside the root.
        """
        return self._locate(self.normalize(device_path))[0]

    def _locate(self, normalized: str) -> tuple[Path, set[str]]:
        """The host path and the device paths it really names (its folder's and its own
        target after symlinks), each checked to lie inside the root."""
        if "\0" in normalized:
            raise DeviceFileError(errno.ENOENT, normalized)
        candidate = self.root.joinpath(normalized.lstrip("/"))
        real = {normalized, self._device_path_of(candidate.resolve(), normalized)}
        if normalized != "/":
            real.add(self._device_path_of(candidate.parent.resolve() / candidate.name, normalized))
        return candidate, real

    def _device_path_of(self, resolved: Path, shown: str) -> str:
        if resolved == self.root:
            return "/"
        if self.root not in resolved.parents:
            raise DeviceFileError(errno.EACCES, shown)
        return "/" + resolved.relative_to(self.root).as_posix()

    def check(self, device_path: str, identity: Identity, access: Access) -> str:
        """The normalized path, if `identity` may read or write it there and where it leads."""
        normalized = self.normalize(device_path, identity.cwd)
        _, real = self._locate(normalized)
        if not all(permitted(path, identity.user, access) for path in real):
            raise DeviceFileError(errno.EACCES, normalized)
        return normalized

    def host_path(
        self, device_path: str, identity: Identity | None = None, access: Access = Access.READ
    ) -> Path:
        """Host path of a device path, checking containment and ownership."""
        return self.join(self.check(device_path, identity or Identity(), access))

    def host_tree(self, device_path: str, identity: Identity | None = None) -> Path:
        """Host path of a file or folder to remove or move away, with all it contains.

        Writing the entry must be allowed, and the folder must hold no protected folder
        (`rm -rf /data`, `mv /data /sdcard/d` are refused however they are spelled).
        """
        identity = identity or Identity()
        normalized = self.check(device_path, identity, Access.WRITE)
        if any(_within(protected, normalized) for protected in PROTECTED_DIRS):
            raise DeviceFileError(errno.EACCES, normalized)
        return self.join(normalized)

    def app_data_dir(self, package: str) -> Path:
        """/data/data/<package> on the host, for a valid package name only."""
        return self.join(f"{APP_DATA_ROOT}/{check_package_name(package)}")

    def used_bytes(self) -> int:
        total = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_size
                except OSError:
                    continue
        return total
