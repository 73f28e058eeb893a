"""The up-to-date check of a model with external data reads no weight bytes
(the per-machine stat cache answers), and a real content change of the weights is detected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trtmake import cache as cache_module
from trtmake import hashing


@pytest.fixture
def hashed(monkeypatch):
    """Every file whose bytes trtmake hashes, in order."""
    paths: list[Path] = []
    real = hashing.digest_file

    def recording(path):
        paths.append(Path(path).resolve())
        return real(path)

    monkeypatch.setattr(hashing, "digest_file", recording)
    monkeypatch.setattr(cache_module, "digest_file", recording)
    return paths


def _age_objects(cache: Path, seconds: float = 60) -> None:
    """Objects just written are inside the stat cache's racy window; a real no-op comes later."""
    old = os.path.getmtime(cache) - seconds
    for p in (cache / "objects").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))


def _args(model: Path) -> tuple[str, ...]:
    return ("target=tiny_cnn_fp32", f"model.path={model}", "model.generator=null")


def test_unchanged_external_data_is_not_rehashed(trtmake, tiny_model, hashed):
    weights = (tiny_model.parent / "tiny.weights").resolve()
    assert trtmake(*_args(tiny_model)) == 0
    assert weights in hashed  # the first run hashes the weights once
    _age_objects(trtmake.cache)
    hashed.clear()
    assert trtmake(*_args(tiny_model)) == 0
    assert set(trtmake.statuses().values()) == {"cached"}
    assert weights not in hashed and tiny_model.resolve() not in hashed, hashed
    hashed.clear()
    assert trtmake(*_args(tiny_model), command="explain") == 0
    assert hashed == []  # the up-to-date check itself reads no bytes at all


def test_touched_external_data_is_rehashed_once_and_rebuilds_nothing(trtmake, tiny_model, hashed):
    weights = tiny_model.parent / "tiny.weights"
    assert trtmake(*_args(tiny_model)) == 0
    old = weights.stat().st_mtime
    os.utime(weights, (old + 5, old + 5))
    hashed.clear()
    assert trtmake(*_args(tiny_model)) == 0
    assert weights.resolve() in hashed
    assert set(trtmake.statuses().values()) == {"cached"}


def test_changed_external_data_is_detected(trtmake, tiny_model):
    weights = tiny_model.parent / "tiny.weights"
    assert trtmake(*_args(tiny_model)) == 0
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x40  # one weight changes; same size
    old = weights.stat().st_mtime
    weights.write_bytes(bytes(data))
    os.utime(weights, (old + 5, old + 5))
    assert trtmake(*_args(tiny_model), command="explain") == 0
    assert "inputs.external/tiny.weights" in trtmake.last_out
    assert trtmake(*_args(tiny_model)) == 0
    st = trtmake.statuses()
    assert st["source"] == "built" and st["build"] == "built", st
