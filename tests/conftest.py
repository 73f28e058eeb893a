"""Shared fixtures: run trtmake in-process on the real project config, with the cache, the
report and any model files under tmp_path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


class Runner:
    def __init__(self, tmp_path: Path, capsys):
        self.cache = tmp_path / "cache"
        self.report_path = tmp_path / "report.json"
        self.capsys = capsys

    def __call__(self, *args: str, command: str | None = None):
        from trtmake.cli import main

        argv = ([command] if command else []) + [f"cache.dir={self.cache}", f"report.path={self.report_path}", *args]
        if self.report_path.exists():
            self.report_path.unlink()
        code = main(argv)
        out = self.capsys.readouterr()
        self.last_out, self.last_err = out.out, out.err
        return code

    @property
    def report(self) -> dict:
        return json.loads(self.report_path.read_text())

    def statuses(self, index: int = 0) -> dict[str, str]:
        return {s["name"]: s["status"] for s in self.report["targets"][index]["stages"]}

    def cache_files(self) -> list[Path]:
        return sorted(p for p in self.cache.rglob("*") if p.is_file()) if self.cache.exists() else []


@pytest.fixture
def trtmake(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TRTMAKE_CACHE", raising=False)
    return Runner(tmp_path, capsys)


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    """tiny_cnn written as a user's ONNX file with its weights in an external-data file."""
    import onnx

    from trtmake.models import build

    model = build("tiny_cnn", {"seed": 0})
    path = tmp_path / "model" / "tiny.onnx"
    path.parent.mkdir()
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="tiny.weights", size_threshold=0)
    old = path.stat().st_mtime - 10  # older than the racy window: the stat cache may trust it
    os.utime(path, (old, old))
    os.utime(path.parent / "tiny.weights", (old, old))
    return path


@pytest.fixture(scope="session")
def shipped_cache(tmp_path_factory) -> Path:
    """One cache for the tests that build every shipped target (onnxruntime, then each simulated
    TensorRT release): what does not depend on the backend (sources, calibration, reference
    outputs) is built once for all of them."""
    return tmp_path_factory.mktemp("shipped-cache")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """One moto S3 server for the whole session (tests/remote_helpers.py)."""
    from remote_helpers import moto_server

    yield from moto_server(tmp_path_factory)
