"""Committed weights: present, small, matching their recorded sha256, refused when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mobilize.models.weights as weights
from mobilize.models.weights import WeightsError, load_pretrained, read_manifest, sha256_of
from tests.models.conftest import NAMES, model_module

MAX_BYTES = 5 * 1024 * 1024


def test_every_model_has_committed_weights_in_the_manifest() -> None:
    assert set(NAMES) <= set(read_manifest())


@pytest.mark.parametrize("name", sorted(read_manifest()))
def test_weight_file_matches_its_sha256_and_size_limit(name: str) -> None:
    path = weights.weight_path(name)
    assert path.stat().st_size <= MAX_BYTES
    assert sha256_of(path) == read_manifest()[name]


def test_model_card_records_every_sha256() -> None:
    card = (Path(weights.__file__).parent / "README.md").read_text()
    for name, digest in read_manifest().items():
        assert f"weights/{name}.pt | `{digest}`" in card


@pytest.fixture()
def weights_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "weights"
    shutil.copytree(weights.WEIGHTS_DIR, copy)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", copy)
    return copy


def test_tampered_weights_are_refused_with_a_hint(weights_copy: Path) -> None:
    path = weights_copy / "espcn.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as caught:
        model_module("espcn").build(pretrained=True)
    assert "sha256" in caught.value.message and read_manifest()["espcn"] in caught.value.message
    assert "mobilize.models.train espcn" in (caught.value.hint or "")


def test_missing_weights_name_the_file_and_the_way_out(weights_copy: Path) -> None:
    (weights_copy / "unet.pt").unlink()
    with pytest.raises(WeightsError) as caught:
        load_pretrained("unet", model_module("unet").build(pretrained=False))
    assert "unet.pt" in caught.value.message
    assert "pretrained=False" in (caught.value.hint or "")
