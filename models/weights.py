"""Committed weights: where they live, their recorded sha256, and checked loading.

`weights/manifest.json` maps each model name to the sha256 of `weights/<name>.pt`; the
training script writes both, the model card shows the hash, and `load_pretrained` refuses
a file whose hash differs (a stale or corrupted checkpoint would otherwise load silently).
"""

from __future__ import annotations

import fcntl
import io
import json
import tempfile
from pathlib import Path

import torch

from mobilize.contract.files import atomic_write_bytes, sha256_file
from mobilize.errors import MobilizeError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class WeightsError(MobilizeError):
    """A committed weight file is missing or is not the one the manifest recorded."""


def weight_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.pt"


def record_path(name: str) -> Path:
    """The training record (steps, device, seconds, held-out quality) beside the weights."""
    return WEIGHTS_DIR / f"{name}.json"


def manifest_path() -> Path:
    return WEIGHTS_DIR / "manifest.json"


def sha256_of(path: Path) -> str:
    return sha256_file(path)


def read_manifest() -> dict[str, str]:
    if not manifest_path().exists():
        return {}
    return json.loads(manifest_path().read_text())


def save_weights(name: str, module: torch.nn.Module) -> str:
    """Write `weights/<name>.pt` and record its sha256 in the manifest; return the hash."""
    path = weight_path(name)
    state = {key: value.detach().cpu() for key, value in module.state_dict().items()}
    # Through a buffer: torch.save names the archive after the file it writes, so saving
    # to a temp file directly would put the temp name (and a new hash) into every save.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    digest = sha256_of(path)
    # Several trainings may finish at once (one GPU, several processes): the lock keeps
    # their read-modify-write of the manifest from losing an entry.
    with open(Path(tempfile.gettempdir()) / "mobilize-models-manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest()
        manifest[name] = digest
        atomic_write_bytes(manifest_path(), (json.dumps(manifest, indent=2, sort_keys=True) + "\n")
                            .encode())
    return digest


def load_pretrained(name: str, module: torch.nn.Module) -> torch.nn.Module:
    """Load the committed weights of `name` into `module` after checking their sha256."""
    path = weight_path(name)
    retrain = f"retrain them with `python -m mobilize.models.train {name}` (writes file and hash)"
    expected = read_manifest().get(name)
    if not path.exists() or expected is None:
        raise WeightsError(f"no committed weights for model {name!r} ({path})",
                           hint=f"{retrain}, or build it with pretrained=False")
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(
            f"weights {path} have sha256 {actual}, but models/weights/manifest.json "
            f"records {expected}",
            hint=f"restore the file from git (`git checkout {path.name}` in models/weights) "
                 f"or {retrain}",
        )
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module.eval()
