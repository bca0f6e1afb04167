"""Issue 16: package names cannot lead `pm` outside the emulated phone's folder.

Each hostile name is refused with pm's own wording, and the host folder holding the device
(the device's root and everything beside it) is byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from mobilize.bench import app_contract
from mobilize.emulator.device import EmulatedDevice
from mobilize.emulator.packages import ApkManifest, InstallError
from mobilize.emulator.profile import load_profile
from mobilize.emulator.sandbox import InvalidPackageName, package_name_error
from mobilize.emulator.shell import BufferSink, ShellSession

HOSTILE_NAMES = {
    # name: PackageParser's reason
    "../../../../tmp/x": "bad character '.'",
    "../../../victim": "bad character '.'",
    "/tmp/evil.pkg": "bad character '/'",
    "com.evil/../../../victim": "bad character '/'",
    "com..evil": "bad character '.'",
    ".com.evil": "bad character '.'",
    "com.evil.": "bad character '.'",
    "com": "must have at least one '.' separator",
    "com.1evil": "bad character '1'",
    "com._evil": "bad character '_'",
    "com.\u00e9vil": "bad character '\u00e9'",
    "\uff43om.evil": "bad character '\uff43'",  # fullwidth letter
    "com.evil\\x": "bad character '\\'",
    "com.e vil": "bad character ' '",
    "com." + "a" * 240: "the length of the name is greater than 223",
}


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry below `folder`: kind, mode and (for files) content."""
    entries: dict[str, tuple] = {}
    for directory, names, files in os.walk(folder):
        for name in names + files:
            path = Path(directory, name)
            info = os.lstat(path)
            relative = str(path.relative_to(folder))
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[relative] = ("dir", info.st_mode)
            else:
                entries[relative] = ("file", info.st_mode, path.read_bytes())
    return entries


def sh(device: EmulatedDevice, line: str) -> tuple[int, str, str]:
    out, err = BufferSink(), BufferSink()
    code = ShellSession(device).run(line, out, err)
    return code, out.getvalue().decode(), err.getvalue().decode()


def write_apk(path: Path, package: str) -> Path:
    manifest = (
        '<manifest xmlns:android="http://schemas.android.com/apk/res/android"'
        f' package={quoteattr(package)} android:versionCode="1" android:versionName="1"/>'
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("AndroidManifest.xml", manifest)
    return path


@pytest.fixture
def device(tmp_path: Path) -> EmulatedDevice:
    return EmulatedDevice(tmp_path / "device", load_profile())


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Host files beside the device's root, where '../../../victim' would lead."""
    folder = tmp_path / "victim"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "keep.txt").write_text("host data")
    (folder / "base.apk").write_text("not yours")
    return folder


@pytest.mark.parametrize("name", ["com.example", "dev.mobilize.bench", "a.b", "A1.b_2.C"])
def test_valid_package_names(name) -> None:
    assert package_name_error(name) is None


@pytest.mark.parametrize(("name", "reason"), [*HOSTILE_NAMES.items(), ("", None)])
def test_hostile_package_names_are_refused_by_the_rule(name, reason) -> None:
    assert package_name_error(name) == (reason or "must have at least one '.' separator")


@pytest.mark.parametrize(("name", "reason"), HOSTILE_NAMES.items())
def test_pm_install_refuses_a_hostile_manifest_package(device, tmp_path, victim, name, reason):
    apk = write_apk(tmp_path / "evil.apk", name)
    device.sandbox.join("/data/local/tmp/evil.apk").write_bytes(apk.read_bytes())
    before = snapshot(tmp_path)
    code, out, err = sh(device, "pm install -r /data/local/tmp/evil.apk")
    assert (code, err) == (1, "")
    assert out == (
        f"Failure [INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME: Invalid manifest package: {reason}]\n"
    )
    assert snapshot(tmp_path) == before
    assert name not in {p.name for p in device.packages.all()}


def test_pm_install_refuses_an_absolute_host_path_as_package(device, tmp_path) -> None:
    target = tmp_path / "outside" / "evil"
    apk = write_apk(tmp_path / "evil.apk", str(target))
    device.sandbox.join("/data/local/tmp/evil.apk").write_bytes(apk.read_bytes())
    before = snapshot(tmp_path)
    code, out, _ = sh(device, "pm install /data/local/tmp/evil.apk")
    assert code == 1
    assert out == (
        "Failure [INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME: Invalid manifest package:"
        " bad character '/']\n"
    )
    assert not target.exists() and not target.parent.exists()
    assert snapshot(tmp_path) == before


def test_an_empty_package_is_a_malformed_manifest(device, tmp_path) -> None:
    apk = write_apk(tmp_path / "evil.apk", "")
    device.sandbox.join("/data/local/tmp/evil.apk").write_bytes(apk.read_bytes())
    code, out, _ = sh(device, "pm install /data/local/tmp/evil.apk")
    assert code == 1
    assert out == (
        "Failure [INSTALL_PARSE_FAILED_MANIFEST_MALFORMED: package or versionCode missing]\n"
    )


@pytest.mark.parametrize("name", ["../../../victim", str(Path("/tmp/evil.pkg"))])
def test_the_package_manager_itself_refuses_hostile_names(device, tmp_path, victim, name):
    before = snapshot(tmp_path)
    with pytest.raises(InstallError) as refused:
        device.packages.install_manifest(ApkManifest(name, 1, "1"), None, allow_downgrade=True)
    assert refused.value.code == "INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME"
    with pytest.raises(InvalidPackageName):
        device.sandbox.app_data_dir(name)
    assert device.packages.uninstall(name) is False
    assert device.packages.clear_data(name) is False
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["../../../victim", "../../../victim/files", "/", "..", ""])
def test_pm_clear_uninstall_and_run_as_of_hostile_names_touch_nothing(
    device, tmp_path, victim, name
) -> None:
    before = snapshot(tmp_path)
    quoted = f"'{name}'"
    assert sh(device, f"pm clear {quoted}") == (1, "Failed\n", "")
    assert sh(device, f"pm uninstall {quoted}") == (
        1,
        "Failure [DELETE_FAILED_INTERNAL_ERROR]\n",
        "",
    )
    assert sh(device, f"run-as {quoted} rm -rf files") == (
        1,
        "",
        f"run-as: unknown package: {name}\n",
    )
    assert sh(device, f"pm path {quoted}")[0] == 1
    assert snapshot(tmp_path) == before


def test_a_tampered_package_list_is_not_trusted(tmp_path, victim) -> None:
    root = tmp_path / "device"
    EmulatedDevice(root, load_profile())  # writes the list with the bundled app
    registry = root / "data/system/packages.json"
    entries = json.loads(registry.read_text())
    good = entries[app_contract.PACKAGE]
    entries["../../../victim"] = dict(good, name="../../../victim", code_path="/data/app/~~a==")
    entries["com.sneaky.app"] = dict(
        good, name="com.sneaky.app", code_path="/data/app/../../../victim"
    )
    entries["com.alias.app"] = dict(good)  # a valid key naming another package
    registry.write_text(json.dumps(entries))
    device = EmulatedDevice(root, load_profile())
    assert [p.name for p in device.packages.all()] == [app_contract.PACKAGE]
    before = snapshot(tmp_path)
    for name in ("../../../victim", "com.sneaky.app", "com.alias.app"):
        assert sh(device, f"pm clear '{name}'") == (1, "Failed\n", "")
        assert sh(device, f"pm uninstall '{name}'")[1] == "Failure [DELETE_FAILED_INTERNAL_ERROR]\n"
    assert snapshot(tmp_path) == before
    assert (victim / "files" / "keep.txt").read_text() == "host data"


def test_the_shell_cannot_rewrite_the_package_list(device) -> None:
    code, _, err = sh(device, "echo '{}' > /data/system/packages.json")
    assert (code, err) == (
        1,
        "/system/bin/sh: can't create /data/system/packages.json: Permission denied\n",
    )
    assert sh(device, "cat /data/system/packages.json")[2] == (
        "cat: /data/system/packages.json: Permission denied\n"
    )
    assert app_contract.PACKAGE in {p.name for p in device.packages.all()}


def test_a_valid_install_still_works_and_stays_inside(device, tmp_path) -> None:
    apk = write_apk(tmp_path / "ok.apk", "com.example.fine")
    device.sandbox.join("/data/local/tmp/ok.apk").write_bytes(apk.read_bytes())
    assert sh(device, "pm install /data/local/tmp/ok.apk") == (0, "Success\n", "")
    info = device.packages.get("com.example.fine")
    assert device.sandbox.join(info.code_path).is_relative_to(device.sandbox.root / "data/app")
    assert sh(device, "pm clear com.example.fine") == (0, "Success\n", "")
    assert sh(device, "pm uninstall com.example.fine") == (0, "Success\n", "")
