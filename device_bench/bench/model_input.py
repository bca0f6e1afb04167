"""What `mobilize bench MODEL` means: a .tflite file, or an export folder with metadata.json.

An export folder is read through its metadata.json (its list of artifacts and their
targets); file names are never parsed. A file that is not a TFLite model is refused here,
before any device is touched (exit 2): a bare file by its FlatBuffer identifier and LiteRT's
own parser, an export folder's files by the sha256 its metadata.json vouches for.
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
    check_tflite(path)
    return [_model(path, path.name, None)]


TFLITE_IDENTIFIER = b"TFL3"  # the FlatBuffer file identifier of schema.fbs, at bytes 4..8
# What a file that is not a model often is, to say so instead of "not TFLite".
_KNOWN_MAGIC = ((b"PK\x03\x04", "a zip archive (an .apk, or a PyTorch .pt file)"),
                (b"\x89HDF", "an HDF5 file (a Keras .h5 model)"),
                (b"\x7fELF", "an executable"),
                (b"\x89PNG", "a PNG image"))


def check_tflite(path: Path) -> None:
    """Refuse a file that is not a TFLite FlatBuffer: the identifier first (8 bytes), then,
    when LiteRT is installed, its parser (the FlatBuffers verifier, ~1 ms on a small file;
    a cut-off or corrupted file passes the identifier check but not this)."""
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except OSError as error:
        raise ModelError(f"cannot read {path}: {error.strerror or error}",
                         hint="check the file's permissions") from error
    if head[4:8] != TFLITE_IDENTIFIER:
        what = next((name for magic, name in _KNOWN_MAGIC if head.startswith(magic)), None)
        if not head:
            what = "empty"
        found = f"it is {what}" if what else (
            f"its FlatBuffer file identifier (bytes 4 to 7) is {head[4:8]!r}, not "
            f"{TFLITE_IDENTIFIER!r}")
        raise ModelError(
            f"{path} is not a TFLite model: {found}",
            hint="bench the .tflite that `mobilize export` wrote (or its output folder)")
    problem = _litert_parse_error(path)
    if problem:
        raise ModelError(
            f"{path} is not a valid TFLite model (LiteRT cannot parse it: {problem})",
            hint="the file is damaged or cut off: copy or export it again")


def _litert_parse_error(path: Path) -> str | None:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the identifier check alone, then
        return None
    try:
        Interpreter(model_path=str(path))
    except ValueError as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        # Only a broken buffer is the file's fault: an op this host's LiteRT does not know
        # (a custom op) may well run on the phone, so it is left for the device to judge.
        if any(word in text.lower() for word in ("flatbuffer", "schema version", "identifier")):
            return text
    except RuntimeError:
        return None
    return None


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
        if not artifact.sha256:  # nothing vouches for its bytes: look at them
            check_tflite(file)
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
