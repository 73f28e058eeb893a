"""Timing cache as DESIGN.md section 3, against the test double: the pinned file is read, never
written, by a build; the produced cache is a build output; merging is explicit and atomic."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from trt_double import graphs, install
from trt_double.fake_tensorrt import CACHE_MAGIC
from trtmake.backends import tensorrt as backend
from trtmake.backends.base import BuildSpec
from trtmake.errors import UserError
from trtmake.profiles import Profile, ShapeRange

H100 = "NVIDIA H100 80GB HBM3"
PROFILE = Profile("default", {"x": ShapeRange((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))})


def cache_file(path, entries, device=H100, version="10.13.3.9"):
    """A timing cache in the double's serialized form, as another build would have produced it."""
    body = {"device": device, "trt": version, "entries": sorted(entries)}
    path.write_bytes(CACHE_MAGIC + json.dumps(body).encode())
    return path


def entries(path):
    return set(json.loads(path.read_bytes()[len(CACHE_MAGIC):])["entries"])


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spec_for(tmp_path, pinned=None, options=None):
    return BuildSpec(graphs.conv_relu(tmp_path / "m.onnx"), (PROFILE,), dict(options or {}), pinned)


def build_key(spec):
    """What the executor hashes for the build stage: config slice + input digests (incl. pinned cache)."""
    parts = {"options": spec.options, "onnx": sha(spec.onnx_path),
             "timing_cache": sha(spec.timing_cache) if spec.timing_cache else None}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# -- builds ---------------------------------------------------------------------------------------------
def test_pinned_cache_is_read_and_never_written(monkeypatch, tmp_path):
    d = install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"Old:tactic"})
    before = (sha(pinned), pinned.stat().st_mtime_ns)
    spec = spec_for(tmp_path, pinned)
    listing = sorted(os.listdir(tmp_path))
    result = backend.build(spec, tmp_path / "work")
    assert d.rec.args("create_timing_cache")[0] == (pinned.read_bytes(),)
    assert d.rec.args("set_timing_cache")[0][1] is False  # ignore_mismatch=False
    assert (sha(pinned), pinned.stat().st_mtime_ns) == before
    assert sorted(os.listdir(tmp_path)) == listing + ["work"]  # nothing written beside the pinned file
    produced = result.timing_cache_path
    assert produced.parent == tmp_path / "work" and produced.name == "timing.cache"
    assert entries(produced) == {"Old:tactic", "CaskConvolution:conv0 + relu0"}
    assert result.extra["timing_cache"] == "pinned"


def test_without_pinned_cache_the_build_starts_empty_and_still_outputs_one(monkeypatch, tmp_path):
    d = install(monkeypatch)
    result = backend.build(spec_for(tmp_path), tmp_path / "work")
    assert d.rec.args("create_timing_cache") == [(b"",)]
    assert result.extra["timing_cache"] == "empty"
    assert entries(result.timing_cache_path) == {"CaskConvolution:conv0 + relu0"}


def test_pinned_cache_from_another_gpu_is_ignored_with_a_note(monkeypatch, tmp_path):
    d = install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"A100:tactic"}, device="NVIDIA A100-SXM4-80GB")
    result = backend.build(spec_for(tmp_path, pinned), tmp_path / "work")
    assert d.rec.args("create_timing_cache") == [(pinned.read_bytes(),), (b"",)]
    assert result.extra["timing_cache"] == "pinned-mismatch"
    assert "does not match this GPU/TensorRT; built from an empty cache" in result.log
    assert "A100:tactic" not in entries(result.timing_cache_path)


def test_missing_pinned_cache_is_a_user_error(monkeypatch, tmp_path):
    install(monkeypatch)
    with pytest.raises(UserError, match=r"backend.tensorrt.timing_cache: .*nope.cache does not exist"):
        backend.build(spec_for(tmp_path, tmp_path / "nope.cache"), tmp_path / "work")


def test_a_build_never_changes_its_own_key(monkeypatch, tmp_path):
    install(monkeypatch)
    spec = spec_for(tmp_path, cache_file(tmp_path / "team.cache", {"Old:tactic"}))
    key = build_key(spec)
    for run in range(2):
        backend.build(spec, tmp_path / f"work{run}")
        assert build_key(spec) == key


def test_merging_outputs_changes_the_key_only_through_the_explicit_command(monkeypatch, tmp_path):
    install(monkeypatch)
    spec = spec_for(tmp_path, cache_file(tmp_path / "team.cache", {"Old:tactic"}))
    key = build_key(spec)
    result = backend.build(spec, tmp_path / "work")
    summary = backend.merge_timing_caches(spec.timing_cache, [result.timing_cache_path])
    assert summary["changed"] and build_key(spec) != key


# -- merge ----------------------------------------------------------------------------------------------
def test_merge_combines_every_produced_cache_into_the_pinned_file(monkeypatch, tmp_path):
    d = install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"a"})
    one, two = cache_file(tmp_path / "1.cache", {"b"}), cache_file(tmp_path / "2.cache", {"b", "c"})
    old = sha(pinned)
    summary = backend.merge_timing_caches(pinned, [one, two])
    assert entries(pinned) == {"a", "b", "c"}
    assert [c.args[1] for c in d.rec.of("combine")] == [False, False]  # ignore_mismatch=False
    assert summary["merged"] == [str(one), str(two)] and summary["rejected"] == []
    assert summary["changed"] is True and summary["sha256_before"] == old
    assert summary["sha256_after"] == sha(pinned) and summary["bytes"] == pinned.stat().st_size
    assert summary["pinned"] == str(pinned)


def test_merge_rejects_caches_from_another_device_or_release(monkeypatch, tmp_path):
    install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"a"})
    other_gpu = cache_file(tmp_path / "a100.cache", {"x"}, device="NVIDIA A100-SXM4-80GB")
    other_trt = cache_file(tmp_path / "trt11.cache", {"y"}, version="11.4.0.106")
    same = cache_file(tmp_path / "ok.cache", {"z"})
    summary = backend.merge_timing_caches(pinned, [other_gpu, other_trt, same])
    assert summary["rejected"] == [str(other_gpu), str(other_trt)] and summary["merged"] == [str(same)]
    assert entries(pinned) == {"a", "z"}


def test_merge_writes_through_a_temp_file_in_the_same_folder(monkeypatch, tmp_path):
    install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"a"})
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((os.path.dirname(src), os.path.basename(src), dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    backend.merge_timing_caches(pinned, [cache_file(tmp_path / "1.cache", {"b"})])
    assert len(renames) == 1
    folder, name, dst = renames[0]
    assert folder == str(tmp_path) and name != "team.cache" and os.fspath(dst) == str(pinned)


def test_merge_interrupted_before_the_rename_leaves_the_pinned_file_intact(monkeypatch, tmp_path):
    install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"a"})
    produced = cache_file(tmp_path / "1.cache", {"b"})
    old = pinned.read_bytes()
    listing = sorted(os.listdir(tmp_path))

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        backend.merge_timing_caches(pinned, [produced])
    assert pinned.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == listing  # the temp file was removed


def test_merge_with_nothing_new_does_not_rewrite_the_pinned_file(monkeypatch, tmp_path):
    install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"a", "b"})
    stamp = pinned.stat().st_mtime_ns, pinned.stat().st_ino
    summary = backend.merge_timing_caches(pinned, [cache_file(tmp_path / "1.cache", {"b"})])
    assert summary["changed"] is False
    assert (pinned.stat().st_mtime_ns, pinned.stat().st_ino) == stamp


def test_merge_creates_the_pinned_file_when_absent(monkeypatch, tmp_path):
    install(monkeypatch)
    pinned = tmp_path / "caches" / "team.cache"
    summary = backend.merge_timing_caches(pinned, [cache_file(tmp_path / "1.cache", {"b"})])
    assert entries(pinned) == {"b"} and summary["sha256_before"] is None


def test_merge_with_a_missing_output_fails_before_touching_the_pinned_file(monkeypatch, tmp_path):
    d = install(monkeypatch)
    pinned = cache_file(tmp_path / "team.cache", {"a"})
    old = pinned.read_bytes()
    with pytest.raises(UserError, match=r"timing cache: .*gone.cache does not exist"):
        backend.merge_timing_caches(pinned, [cache_file(tmp_path / "1.cache", {"b"}), tmp_path / "gone.cache"])
    assert pinned.read_bytes() == old and d.rec.of("combine") == []
