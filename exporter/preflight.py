"""Checks that run before the long stages of an export, and the tidy write at its end.

An export takes 10-60 s of conversion; input that is going to be refused anyway is refused
first, in well under a second, with exit 2 (UsageError):

* `check_out_dir`: the output folder can be made and written (before stage 1);
* `check_calibration`: the calibration folders or arrays are ones stage 5 would accept
  (right after stage 1, which knows the inputs; before ONNX and onnx2tf).

`replace_metadata` writes the new metadata.json and then removes what an earlier export
left in the same folder that this one did not write (a model_int16x8.tflite, a
verify_int16x8.png from a run with other targets), so that nothing stale sits beside
a metadata.json that does not vouch for it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mobilize.contract.metadata import METADATA_FILE, write_metadata
from mobilize.contract.specs import InputSpec
from mobilize.errors import UsageError
from mobilize.exporter.calibration import check_sources
from mobilize.exporter.config import ExportConfig, Target

_SUFFIXES = "|".join(re.escape(t.file_suffix) for t in Target)
# The names the exporter itself writes (pipeline._convert_target, _write_outputs), and the
# temp files contract.files.atomic_write_bytes leaves only when killed mid-write.
OWN_NAMES = re.compile(
    rf"^(model_({_SUFFIXES})\.tflite|verify_({_SUFFIXES})\.png|model\.onnx)$"
    rf"|^\.(model_({_SUFFIXES})\.tflite|verify_({_SUFFIXES})\.png|model\.onnx"
    rf"|{re.escape(METADATA_FILE)})\..+\.tmp$")
LISTING_KEYS = ("file", "strip")  # metadata.json keys whose values name files of the folder


def check_out_dir(out: Path) -> None:
    """Refuse an output folder that cannot be made or written, before any work.

    The nearest part of the path that exists must be a folder (a parent that is a file, or
    a dangling symlink, makes mkdir fail after the whole conversion), and it must take a
    new file. Both an `os.access` check and a real write probe: root passes `os.access` and
    every permission bit (a chmod 555 folder *is* writable for root, so that is no error),
    but nobody writes through a file, on a read-only mount, or into an immutable folder —
    only trying shows those. For a normal user `os.access` gives the plain "no permission"
    without touching anything. The probe is a temp file, removed at once; a folder that does
    not exist yet is not created here (an export that fails leaves nothing behind).
    """
    hint = "give --out a folder you can write (it is created when missing)"
    if os.path.lexists(out) and not out.is_dir():
        kind = "a dangling symlink" if not out.exists() else "a file"
        raise UsageError(f"output folder {out} is {kind}, not a folder", hint=hint)
    existing = out
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "a dangling symlink" if not existing.exists() else "a file"
        raise UsageError(f"output folder {out} cannot be made: {existing} is {what}, "
                         "not a folder", hint=hint)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {out} cannot be written: no permission to write "
                         f"in {existing}", hint=hint)
    try:
        handle, probe = tempfile.mkstemp(prefix=".mobilize-write-test-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise UsageError(f"output folder {out} cannot be written: {existing}: "
                         f"{error.strerror or error}", hint=hint) from error


def check_calibration(inputs: Sequence[InputSpec], config: ExportConfig) -> None:
    """The calibration sources, checked as stage 5 will use them (same sample counts)."""
    calibrating = any(t.needs_calibration for t in config.targets)
    check_sources(inputs, config.calib_sources,
                  config.calib_samples if calibrating else 1, config.verify_samples)


def replace_metadata(out: Path, metadata: dict[str, Any]) -> Path:
    """Write metadata.json (atomically, last: it vouches for the rest), then remove the
    files of an earlier export that this one did not write.

    Removed: names the previous metadata.json listed (`file`, `strip` entries) and names of
    the exporter's own pattern (OWN_NAMES), that the new metadata does not list. Never
    anything else — a user's notes or photos in the folder stay — and only plain files
    directly in the folder, never through a path or a symlink. The old list is read before
    the new metadata replaces it; a reader sees the old metadata with all its files, or the
    new one with all of its own (stale files then go, and one left by a crash in between
    is unlisted and matches OWN_NAMES, so the next export removes it).
    """
    stale = stale_files(out, metadata)
    path = write_metadata(out, metadata)
    for file in stale:
        if _plain_file(file):  # still: nothing else took the name meanwhile
            file.unlink(missing_ok=True)
    return path


def stale_files(out: Path, metadata: dict[str, Any]) -> list[Path]:
    """What replace_metadata(out, metadata) removes, read while the old metadata is there."""
    previous = _listed(_read_json(out / METADATA_FILE))
    keep = set(_listed(metadata)) | {METADATA_FILE}
    return [out / name for name in sorted(_stale_names(out, previous, keep))]


def _stale_names(out: Path, previous: Sequence[str], keep: set[str]) -> set[str]:
    try:
        present = {entry.name for entry in os.scandir(out)}
    except OSError:
        return set()
    candidates = {name for name in present if OWN_NAMES.match(name)}
    candidates |= {name for name in previous if name in present}
    return {name for name in candidates - keep if _plain_file(out / name)}


def _plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # no earlier metadata, or none we can trust: list nothing from it


def _listed(document: Any) -> list[str]:
    """Plain file names under `file`/`strip` keys anywhere in a metadata document."""
    return [value for value in _walk(document) if _plain_name(value)]


def _walk(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in LISTING_KEYS and isinstance(value, str):
                yield value
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and "\0" not in name
