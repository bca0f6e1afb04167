"""Device profiles: the JSON files that say which phone the emulator pretends to be."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mobilize.bench import app_contract
from mobilize.emulator.faults import ThermalStatus
from mobilize.errors import UsageError

PROFILES_DIR = Path(__file__).with_name("profiles")
DEFAULT_PROFILE_PATH = PROFILES_DIR / "default.json"
REQUIRED_PROPERTIES = (
    "ro.product.model",
    "ro.product.manufacturer",
    "ro.product.cpu.abi",
    "ro.build.version.sdk",
    "ro.build.version.release",
)


@dataclass(frozen=True)
class GpuInfo:
    vendor: str
    renderer: str
    version: str


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    properties: dict[str, str]
    gpu: GpuInfo
    battery_temperature_tenths_c: int = 285
    battery_level: int = 87
    thermal_status: ThermalStatus = ThermalStatus.NONE
    data_total_bytes: int = 64 * 1024**3
    app_preinstalled: bool = True
    app_version_code: int = app_contract.APP_VERSION_CODE
    app_version_name: str = app_contract.APP_VERSION_NAME

    @property
    def model(self) -> str:
        return self.properties["ro.product.model"]

    @property
    def sdk(self) -> int:
        return int(self.properties["ro.build.version.sdk"])


def load_profile(source: dict | Path | str | None = None) -> DeviceProfile:
    """A profile from a dict, a JSON file, or the bundled default; clear errors when bad."""
    if source is None:
        source = DEFAULT_PROFILE_PATH
    if isinstance(source, dict):
        data = source
        origin = "the profile given"
    else:
        path = Path(source)
        origin = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise UsageError(
                f"device profile {path} does not exist",
                hint=f"pass a JSON file like {DEFAULT_PROFILE_PATH}",
            ) from error
        except json.JSONDecodeError as error:
            raise UsageError(
                f"device profile {path} is not valid JSON: {error}",
                hint="fix the file; see the bundled profiles for the format",
            ) from error
    return _profile_from_dict(data, origin)


def _profile_from_dict(data: dict, origin: str) -> DeviceProfile:
    default = json.loads(DEFAULT_PROFILE_PATH.read_text(encoding="utf-8"))
    properties = {
        **default["properties"],
        **{str(k): str(v) for k, v in data.get("properties", {}).items()},
    }
    missing = [name for name in REQUIRED_PROPERTIES if not properties.get(name)]
    if missing:
        raise UsageError(f"{origin} lacks properties {', '.join(missing)}", hint="add them")
    gpu = {**default["gpu"], **data.get("gpu", {})}
    battery = {**default["battery"], **data.get("battery", {})}
    storage = {**default["storage"], **data.get("storage", {})}
    app = {**default["app"], **data.get("app", {})}
    try:
        thermal = ThermalStatus(int(data.get("thermal_status", default["thermal_status"])))
        return DeviceProfile(
            name=str(data.get("name", Path(origin).stem)),
            properties=properties,
            gpu=GpuInfo(str(gpu["vendor"]), str(gpu["renderer"]), str(gpu["version"])),
            battery_temperature_tenths_c=int(battery["temperature_tenths_c"]),
            battery_level=int(battery["level"]),
            thermal_status=thermal,
            data_total_bytes=int(storage["data_total_bytes"]),
            app_preinstalled=bool(app.get("preinstalled", True)),
            app_version_code=int(app.get("version_code", app_contract.APP_VERSION_CODE)),
            app_version_name=str(app.get("version_name", app_contract.APP_VERSION_NAME)),
        )
    except (ValueError, TypeError, KeyError) as error:
        raise UsageError(
            f"{origin} has a bad value: {error}", hint="compare with default.json"
        ) from error
