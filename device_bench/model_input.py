"""What `mobilize bench MODEL` means: a .tflite file, or an export folder with metadata.json.

An export folder is read through its metadata.json (its list of artifacts and their
targets); file names are never parsed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_bench.errors import ModelError
from device_bench.ops import local_sha256

METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class ModelToBench:
    path: Path
    name: str  # shown in tables: the folder's name plus target, or the file's name
    target: str | None
    sha256: str
    size_bytes: int


def resolve_models(paths: Sequence[Path], targets: Sequence[str] = ()) -> list[ModelToBench]:
    models: list[ModelToBench] = []
    for path in paths:
        models.extend(resolve_model(path, targets))
    return models


def resolve_model(path: Path, targets: Sequence[str] = ()) -> list[ModelToBench]:
    if not path.exists():
        raise ModelError(
            f"model not found: {path}",
            hint="pass a .tflite file or a folder written by `mobilize export` "
            "(with metadata.json)",
        )
    if path.is_dir():
        return _from_export_folder(path, targets)
    if path.suffix.lower() != ".tflite":
        raise ModelError(
            f"{path} is not a .tflite file",
            hint="convert the model first with `mobilize export`, then bench the .tflite "
            "or the export folder",
        )
    return [_model(path, path.name, None)]


def _from_export_folder(folder: Path, targets: Sequence[str]) -> list[ModelToBench]:
    metadata_path = folder / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelError(
            f"{folder} has no {METADATA_FILE}",
            hint="pass a folder written by `mobilize export`, or the .tflite file itself",
        )
    try:
        metadata = json.loads(metadata_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(
            f"cannot read {metadata_path}: {error}",
            hint="export the model again with `mobilize export`",
        ) from error
    artifacts = [a for a in artifact_entries(metadata) if a["file"].lower().endswith(".tflite")]
    if targets:
        known = sorted({a["target"] for a in artifacts if a["target"]})
        artifacts = [a for a in artifacts if a["target"] in targets]
        if not artifacts:
            raise ModelError(
                f"{folder} has no artifact for target {', '.join(targets)}",
                hint=f"targets in this folder: {', '.join(known) or 'none'}",
            )
    if not artifacts:
        raise ModelError(
            f"{metadata_path} lists no .tflite artifact",
            hint="export a TFLite target with `mobilize export --target tflite-...`",
        )
    models = []
    for artifact in artifacts:
        file = folder / artifact["file"]
        if not file.is_file():
            raise ModelError(
                f"{metadata_path} lists {artifact['file']}, which is missing",
                hint="export the model again with `mobilize export`",
            )
        label = f"{folder.name}:{artifact['target']}" if artifact["target"] else file.name
        model = _model(file, label, artifact["target"])
        if artifact["sha256"] and artifact["sha256"] != model.sha256:
            raise ModelError(
                f"{file} changed since it was exported (its sha256 differs from {METADATA_FILE})",
                hint="export the model again, or bench the .tflite file itself",
            )
        models.append(model)
    return models


def artifact_entries(metadata: dict[str, Any]) -> list[dict[str, str | None]]:
    """file, target and sha256 of each artifact metadata.json lists (exporter/pipeline.py
    writes `artifacts: [{target, file, sha256, ...}]`, files relative to the folder)."""
    entries = metadata.get("artifacts")
    if not isinstance(entries, list):
        return []
    found = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            found.append(
                {
                    "file": entry["file"],
                    "target": entry["target"] if isinstance(entry.get("target"), str) else None,
                    "sha256": entry["sha256"] if isinstance(entry.get("sha256"), str) else None,
                }
            )
    return found


def _model(path: Path, name: str, target: str | None) -> ModelToBench:
    return ModelToBench(
        path=path,
        name=name,
        target=target,
        sha256=local_sha256(path),
        size_bytes=path.stat().st_size,
    )
