"""metadata.json, the file beside every export: one typed reader and one writer.

The exporter writes it (`write_metadata`); the bench, the sweep, the quality gate and the
report read it (`read_metadata`) and never parse file names. Only what the readers need is
typed; the whole document stays available as `raw`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilize.contract.files import atomic_write_json
from mobilize.contract.specs import InputSpec, ValueRange
from mobilize.errors import UsageError

METADATA_FILE = "metadata.json"
METADATA_SCHEMA_VERSION = 1


class MetadataError(UsageError):
    """An export folder without a readable metadata.json (exit 2: the user's input)."""


@dataclass(frozen=True)
class ArtifactEntry:
    target: str | None
    file: str  # relative to the export folder
    sha256: str | None


@dataclass(frozen=True)
class SourceModel:
    ref: str  # as the user named it: module:factory, path.py:factory, a .pt/.pt2 file
    kind: str  # factory, module, torchscript, exported_program
    weights: str | None


@dataclass(frozen=True)
class ExportMetadata:
    folder: Path
    source_model: SourceModel | None
    inputs: tuple[InputSpec, ...]
    output_names: tuple[str, ...]
    output_range: ValueRange | None
    artifacts: tuple[ArtifactEntry, ...]
    min_psnr_db: float | None
    raw: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.folder / METADATA_FILE

    def artifact(self, target: str) -> dict[str, Any] | None:
        """The whole artifact entry of one target (verification figures, graph, I/O)."""
        return next((a for a in self.raw.get("artifacts") or [] if a.get("target") == target),
                    None)


def write_metadata(folder: Path, payload: dict[str, Any]) -> Path:
    path = folder / METADATA_FILE
    atomic_write_json(path, {"schema_version": METADATA_SCHEMA_VERSION, **payload})
    return path


def is_export_folder(folder: Path) -> bool:
    return (folder / METADATA_FILE).is_file()


def read_metadata(folder: Path) -> ExportMetadata:
    path = folder / METADATA_FILE
    if not path.is_file():
        raise MetadataError(
            f"{folder} has no {METADATA_FILE}",
            hint="pass a folder written by `mobilize export`, or the .tflite file itself")
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        source = raw.get("source_model")
        return ExportMetadata(
            folder=folder,
            source_model=SourceModel(source["ref"], source.get("kind", "factory"),
                                     source.get("weights")) if source else None,
            inputs=tuple(_input_spec(spec) for spec in raw.get("inputs") or []),
            output_names=tuple(raw.get("output_names") or ()),
            output_range=value_range_from_json(raw.get("output_range")),
            artifacts=tuple(_artifact(entry) for entry in raw.get("artifacts") or []
                            if isinstance(entry, dict) and isinstance(entry.get("file"), str)),
            min_psnr_db=raw.get("min_psnr_db"),
            raw=raw,
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MetadataError(f"cannot read {path}: {error}",
                            hint="export the model again with `mobilize export`") from error


def value_range_to_json(value_range: ValueRange | None) -> dict[str, Any] | None:
    if value_range is None:
        return None
    return {"text": str(value_range), "low": value_range.low, "high": value_range.high,
            "mean": list(value_range.mean) if value_range.mean else None,
            "std": list(value_range.std) if value_range.std else None}


def value_range_from_json(data: dict[str, Any] | None) -> ValueRange | None:
    if not data:
        return None
    mean, std = data.get("mean"), data.get("std")
    return ValueRange(float(data["low"]), float(data["high"]),
                      tuple(mean) if mean else None, tuple(std) if std else None)


def input_spec_to_json(spec: InputSpec) -> dict[str, Any]:
    return {"name": spec.name, "shape_nchw": list(spec.shape),
            "value_range": value_range_to_json(spec.value_range)}


def _input_spec(data: dict[str, Any]) -> InputSpec:
    return InputSpec(data["name"], tuple(int(v) for v in data["shape_nchw"]),
                     value_range_from_json(data.get("value_range")) or ValueRange(0.0, 1.0))


def _artifact(entry: dict[str, Any]) -> ArtifactEntry:
    target = entry.get("target")
    sha256 = entry.get("sha256")
    return ArtifactEntry(target if isinstance(target, str) else None, entry["file"],
                         sha256 if isinstance(sha256, str) else None)
