"""What `mobilize bench MODEL` means: a .tflite file, or an export folder with metadata.json.

An export folder is read through its metadata.json (its list of artifacts and their
targets); file names are never parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mobilize.contract.metadata import METADATA_FILE, MetadataError, read_metadata
from mobilize.device.errors import ModelError
from mobilize.device.ops import local_sha256


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
    try:
        metadata = read_metadata(folder)
    except MetadataError as error:
        raise ModelError(error.message, hint=error.hint) from error
    artifacts = [a for a in metadata.artifacts if a.file.lower().endswith(".tflite")]
    if targets:
        known = sorted({a.target for a in artifacts if a.target})
        artifacts = [a for a in artifacts if a.target in targets]
        if not artifacts:
            raise ModelError(
                f"{folder} has no artifact for target {', '.join(targets)}",
                hint=f"targets in this folder: {', '.join(known) or 'none'}",
            )
    if not artifacts:
        raise ModelError(
            f"{metadata.path} lists no .tflite artifact",
            hint="export a TFLite target with `mobilize export --target tflite-...`",
        )
    models = []
    for artifact in artifacts:
        file = folder / artifact.file
        if not file.is_file():
            raise ModelError(
                f"{metadata.path} lists {artifact.file}, which is missing",
                hint="export the model again with `mobilize export`",
            )
        label = f"{folder.name}:{artifact.target}" if artifact.target else file.name
        model = _model(file, label, artifact.target)
        if artifact.sha256 and artifact.sha256 != model.sha256:
            raise ModelError(
                f"{file} changed since it was exported (its sha256 differs from "
                f"{METADATA_FILE})",
                hint="export the model again, or bench the .tflite file itself",
            )
        models.append(model)
    return models


def _model(path: Path, name: str, target: str | None) -> ModelToBench:
    return ModelToBench(
        path=path,
        name=name,
        target=target,
        sha256=local_sha256(path),
        size_bytes=path.stat().st_size,
    )
