"""Installed packages, their versions, and the one stand-in for an APK we cannot build.

A real APK's AndroidManifest.xml is binary AXML, which nothing on these machines can
produce. `pm install` here accepts a zip whose AndroidManifest.xml is plain-text XML with
package, android:versionCode and android:versionName; that is the only difference from a
phone. The package list persists in the sandbox, so a restarted emulator keeps its apps.

Package names are checked as PackageParser checks them (dotted Java identifiers) before
anything is done with one, and every folder is reached through `Sandbox.join`, so no name
(in an APK, a command line or a tampered package list) leads outside the sandbox.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.etree import ElementTree

from mobilize.emulator.sandbox import Sandbox, package_name_error

ANDROID_NS = "{http://schemas.android.com/apk/res/android}"
SYSTEM_PACKAGES = ("android", "com.android.shell", "com.android.settings", "com.android.systemui")
REGISTRY_DEVICE_PATH = "/data/system/packages.json"
APP_CODE_ROOT = "/data/app"


class InstallError(Exception):
    """An install failure, carrying pm's failure code (INSTALL_FAILED_...)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version_code: int
    version_name: str
    code_path: str  # device folder holding base.apk
    uid: int
    first_install_time: float
    last_update_time: float
    min_sdk: int = 24
    target_sdk: int = 34

    @property
    def apk_path(self) -> str:
        return f"{self.code_path}/base.apk"


@dataclass(frozen=True)
class ApkManifest:
    package: str
    version_code: int
    version_name: str
    min_sdk: int = 24
    target_sdk: int = 34


def read_apk_manifest(apk: Path) -> ApkManifest:
    try:
        with zipfile.ZipFile(apk) as archive:
            manifest_text = archive.read("AndroidManifest.xml")
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise InstallError(
            "INSTALL_FAILED_INVALID_APK", f"failed to read manifest: {error}"
        ) from error
    try:
        root = ElementTree.fromstring(manifest_text)
    except ElementTree.ParseError as error:
        raise InstallError(
            "INSTALL_PARSE_FAILED_NOT_APK",
            f"AndroidManifest.xml is not plain-text XML ({error}); the emulated device reads "
            "a zip with a text manifest in place of a compiled APK",
        ) from error
    package = root.get("package")
    code = root.get(f"{ANDROID_NS}versionCode")
    if not package or code is None:
        raise InstallError(
            "INSTALL_PARSE_FAILED_MANIFEST_MALFORMED", "package or versionCode missing"
        )
    check_manifest_package(package)
    uses_sdk = root.find("uses-sdk")
    min_sdk = int(uses_sdk.get(f"{ANDROID_NS}minSdkVersion", "24")) if uses_sdk is not None else 24
    target = (
        int(uses_sdk.get(f"{ANDROID_NS}targetSdkVersion", "34")) if uses_sdk is not None else 34
    )
    try:
        return ApkManifest(
            package, int(code), root.get(f"{ANDROID_NS}versionName", ""), min_sdk, target
        )
    except ValueError as error:
        raise InstallError("INSTALL_PARSE_FAILED_MANIFEST_MALFORMED", str(error)) from error


def check_manifest_package(package: str) -> None:
    """Refuse a package name as PackageParser does (INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME)."""
    error = package_name_error(package)
    if error is not None:
        raise InstallError(
            "INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME", f"Invalid manifest package: {error}"
        )


def make_stand_in_apk(path: Path, package: str, version_code: int, version_name: str) -> Path:
    """Write a zip the emulated `pm install` accepts (tests and the demo use it)."""
    manifest = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<manifest xmlns:android="http://schemas.android.com/apk/res/android"\n'
        f'    package="{package}" android:versionCode="{version_code}"'
        f' android:versionName="{version_name}">\n'
        '  <uses-sdk android:minSdkVersion="24" android:targetSdkVersion="34"/>\n'
        "</manifest>\n"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("AndroidManifest.xml", manifest)
        archive.writestr("classes.dex", b"dex\n035\0")
    return path


class PackageManager:
    def __init__(self, sandbox: Sandbox, sdk: int) -> None:
        self.sandbox = sandbox
        self.sdk = sdk
        self._lock = threading.Lock()
        self._registry = sandbox.join(REGISTRY_DEVICE_PATH)
        self._packages: dict[str, PackageInfo] = self._load()

    @property
    def is_fresh(self) -> bool:
        return not self._registry.exists()

    def _load(self) -> dict[str, PackageInfo]:
        if not self._registry.exists():
            return {}
        data = json.loads(self._registry.read_text(encoding="utf-8"))
        packages = {name: PackageInfo(**info) for name, info in data.items()}
        # A list edited behind our back may name anything: keep only what we could have made.
        return {
            name: info
            for name, info in packages.items()
            if package_name_error(name) is None
            and info.name == name
            and self._code_path_error(info.code_path, name) is None
        }

    @staticmethod
    def _code_path_error(code_path: str, package: str) -> str | None:
        outer, _, inner = code_path.removeprefix(APP_CODE_ROOT + "/").partition("/")
        if (
            not code_path.startswith(APP_CODE_ROOT + "/")
            or not outer.startswith("~~")
            or not inner.startswith(package + "-")
            or "/" in inner
            or ".." in code_path
        ):
            return f"bad code path {code_path}"
        return None

    def _save(self) -> None:
        self._registry.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._registry.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({n: asdict(p) for n, p in self._packages.items()}, indent=1),
            encoding="utf-8",
        )
        os.replace(temporary, self._registry)

    def get(self, name: str) -> PackageInfo | None:
        with self._lock:
            return self._packages.get(name)

    def all(self) -> list[PackageInfo]:
        with self._lock:
            return sorted(self._packages.values(), key=lambda p: p.name)

    def install_manifest(
        self, manifest: ApkManifest, apk_source: Path | None, *, allow_downgrade: bool
    ) -> PackageInfo:
        check_manifest_package(manifest.package)
        if manifest.min_sdk > self.sdk:
            raise InstallError(
                "INSTALL_FAILED_OLDER_SDK",
                f"Requires newer sdk version #{manifest.min_sdk} (current version is #{self.sdk})",
            )
        with self._lock:
            existing = self._packages.get(manifest.package)
            if existing and manifest.version_code < existing.version_code and not allow_downgrade:
                raise InstallError(
                    "INSTALL_FAILED_VERSION_DOWNGRADE",
                    f"Downgrade detected: Update version code {manifest.version_code} is older "
                    f"than current {existing.version_code}",
                )
            now = time.time()
            # Android 11+ installs into randomly named folders; so do we.
            outer, inner = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
            code_path = f"{APP_CODE_ROOT}/~~{outer}==/{manifest.package}-{inner}=="
            host_code = self.sandbox.join(code_path)
            host_code.mkdir(parents=True, exist_ok=True)
            if apk_source is not None:
                shutil.copyfile(apk_source, host_code / "base.apk")
            else:
                make_stand_in_apk(
                    host_code / "base.apk",
                    manifest.package,
                    manifest.version_code,
                    manifest.version_name,
                )
            if existing:
                shutil.rmtree(self.sandbox.join(existing.code_path), ignore_errors=True)
            uid = existing.uid if existing else 10100 + len(self._packages)
            info = PackageInfo(
                name=manifest.package,
                version_code=manifest.version_code,
                version_name=manifest.version_name,
                code_path=code_path,
                uid=uid,
                first_install_time=existing.first_install_time if existing else now,
                last_update_time=now,
                min_sdk=manifest.min_sdk,
                target_sdk=manifest.target_sdk,
            )
            self._packages[manifest.package] = info
            (self.sandbox.app_data_dir(manifest.package) / "files").mkdir(
                parents=True, exist_ok=True
            )
            self._save()
            return info

    def install_apk(self, apk: Path, *, allow_downgrade: bool = False) -> PackageInfo:
        return self.install_manifest(read_apk_manifest(apk), apk, allow_downgrade=allow_downgrade)

    def uninstall(self, name: str) -> bool:
        if package_name_error(name) is not None:
            return False
        with self._lock:
            info = self._packages.pop(name, None)
            if info is None:
                return False
            shutil.rmtree(self.sandbox.join(info.code_path), ignore_errors=True)
            shutil.rmtree(self.sandbox.app_data_dir(name), ignore_errors=True)
            self._save()
            return True

    def clear_data(self, name: str) -> bool:
        if package_name_error(name) is not None or self.get(name) is None:
            return False
        data_dir = self.sandbox.app_data_dir(name)
        shutil.rmtree(data_dir, ignore_errors=True)
        (data_dir / "files").mkdir(parents=True, exist_ok=True)
        return True
