"""Where a report's figures come from: when and by which mobilize, which export, which settings.

Built once by the command that writes the report (sweep, report) and shown by the report in a
line under its title and a table at its end, so a report read weeks later still says what it
measured and how.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mobilize.contract.metadata import ExportMetadata, is_export_folder, read_metadata
from mobilize.errors import MobilizeError

GIT_TIMEOUT_S = 5.0
TOOLS_SHOWN = ("torch", "onnx2tf", "tensorflow", "ai-edge-litert")
Rows = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Provenance:
    generated_utc: str
    mobilize_version: str
    git_commit: str | None  # "893d66a0c1f2", "+ local changes" appended; None: not a checkout
    export: Rows = ()
    settings: Rows = ()

    def line(self) -> str:
        commit = f", git {self.git_commit}" if self.git_commit else ""
        return f"generated {self.generated_utc} by mobilize {self.mobilize_version}{commit}"


def git_commit(root: Path | None = None) -> str | None:
    """The commit of the mobilize checkout this runs from; None when it is not one (an
    installed wheel), without mistaking a repository around site-packages for ours."""
    import mobilize

    root = root or Path(mobilize.__file__).resolve().parents[1]
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() != root.resolve():
            return None
        commit = _git(root, "rev-parse", "--short=12", "HEAD")
        if commit is None:
            return None
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
        return commit + (" + local changes" if dirty else "")
    except OSError:
        return None


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def export_rows(metadata: ExportMetadata) -> Rows:
    """The export's own story from its metadata.json: model, calibration, rewrites, tools."""
    raw = metadata.raw
    rows: list[tuple[str, str]] = [("export folder", str(metadata.folder))]
    if raw.get("created_utc"):
        rows.append(("exported", str(raw["created_utc"])))
    source = metadata.source_model
    if source is not None:
        weights = f", weights {source.weights}" if source.weights else ""
        rows.append(("source model", f"{source.ref} ({source.kind}{weights})"))
    calibration = raw.get("calibration")
    if calibration:
        rows.append(("calibration", f"{calibration.get('count')} samples: "
                                    f"{calibration.get('source')}"))
    held_out = raw.get("verification_source")
    if held_out:
        rows.append(("export's held-out images",
                     f"{held_out.get('count')}: {held_out.get('source')}"))
    rewrites = (raw.get("onnx") or {}).get("rewrites")
    if rewrites is not None:
        rows.append(("ONNX rewrites", ", ".join(rewrites) or "none"))
    ranges = [f"{a['target'].removeprefix('tflite-')}: {r.get('mode')} {r.get('chosen') or ''}"
              .strip() for a in raw.get("artifacts") or [] if (r := a.get("int8_ranges"))]
    if ranges:
        rows.append(("int8 ranges", "; ".join(ranges)))
    if metadata.min_psnr_db is not None:
        rows.append(("export's --min-psnr", f"{metadata.min_psnr_db:g} dB (worst image)"))
    tools = raw.get("tool_versions") or {}
    shown = [f"{name} {tools[name]}" for name in TOOLS_SHOWN if tools.get(name)]
    if shown:
        rows.append(("export tools", ", ".join(shown)))
    return tuple(rows)


def run_rows(records: Sequence[dict[str, Any]]) -> Rows:
    """The settings the runs were made with, each value once ("20" or "20, 50")."""
    def values(key: str) -> str:
        found = [str(r["result"]["config"].get(key)) for r in records]
        return ", ".join(dict.fromkeys(found)) or "-"

    created = sorted(str(r.get("created_at") or "") for r in records if r.get("created_at"))
    rows = [
        ("runs in this report", str(len(records))),
        ("runner", ", ".join(dict.fromkeys(str(r["result"].get("runner")) for r in records))),
        ("delegates", values("delegate")),
        ("timed runs / warm-ups", f"{values('num_runs')} / {values('warmup_runs')}"),
        ("threads", values("threads")),
        ("GPU precision", values("gpu_precision")),
    ]
    if created:
        rows.append(("measured", created[0] if created[0] == created[-1]
                     else f"{created[0]} to {created[-1]}"))
    return tuple(rows)


def export_of(records: Sequence[dict[str, Any]]) -> ExportMetadata | None:
    """The export folder the runs' models came from, where there is exactly one."""
    folders = {Path(r["model_path"]).parent for r in records if r.get("model_path")}
    if len(folders) != 1:
        return None
    folder = folders.pop()
    if not is_export_folder(folder):
        return None
    try:
        return read_metadata(folder)
    except MobilizeError:
        return None


def build(records: Sequence[dict[str, Any]], metadata: ExportMetadata | None = None,
          settings: Mapping[str, object] | None = None) -> Provenance:
    """Provenance of a report: now, this mobilize, the export (given, or found from the runs'
    model paths) and the settings (the runs' own, then the command's extra ones)."""
    import mobilize

    metadata = metadata or export_of(records)
    extra = tuple((key, str(value)) for key, value in (settings or {}).items())
    return Provenance(
        generated_utc=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        mobilize_version=mobilize.__version__,
        git_commit=git_commit(),
        export=export_rows(metadata) if metadata is not None else (),
        settings=run_rows(records) + extra,
    )
