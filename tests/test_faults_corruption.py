"""Corrupt cache content is detected, reported as a cache miss, and rebuilt; never
a crash, never a wrong engine. Runs trtmake in-process (the `trtmake` fixture) on real builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fault_helpers import assert_same_outcome, audit_objects, audit_records, outcome, stage_records

pytestmark = pytest.mark.faults

FP16 = ("target=tiny_cnn_fp16",)
# (stage, output): every kind of object a tiny fp16 build stores
OBJECTS = [("source", "onnx"), ("precision", "onnx"), ("build", "engine"), ("build", "log"), ("reference", "outputs")]


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """One uninterrupted fp16 build; each test damages its own copy of this cache."""
    from conftest import Runner

    tmp = tmp_path_factory.mktemp("golden")

    class _Capsys:  # the in-process runner reads captured output; nothing to capture here
        def readouterr(self):
            return type("Out", (), {"out": "", "err": ""})()

    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parents[1])
    try:
        runner = Runner(tmp, _Capsys())
        assert runner(*FP16) == 0
    finally:
        os.chdir(cwd)
    return runner.cache, runner.report, outcome(runner.report, runner.cache)


@pytest.fixture
def built(trtmake, golden):
    """`trtmake` with its cache holding a finished fp16 build; returns that build's outcome."""
    cache, report, before = golden
    shutil.copytree(cache, trtmake.cache)
    trtmake.golden_report = report
    return before


def _object(trtmake, stage: str, output: str) -> Path:
    digest = stage_records(trtmake.golden_report, trtmake.cache)[stage]["outputs"][output]["digest"]
    return trtmake.cache / "objects" / digest[:2] / digest


def flip_byte(path: Path, keep_stat: bool = False) -> None:
    """Flip one byte in place (same size, same inode); keep_stat also puts mtime back, as bit rot would."""
    st = path.stat()
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([b[0] ^ 0x40]))
    path.chmod(0o444)
    if keep_stat:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_ino == st.st_ino


def truncate(path: Path) -> None:
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    path.chmod(0o444)


def _statuses(trtmake) -> dict[str, str]:
    return trtmake.statuses()


@pytest.mark.parametrize("damage", [flip_byte, truncate], ids=["flipped-byte", "truncated"])
@pytest.mark.parametrize("stage,output", OBJECTS, ids=[f"{s}.{o}" for s, o in OBJECTS])
def test_damaged_object_is_a_reported_miss_and_rebuilt(trtmake, built, stage, output, damage):
    before = built
    obj = _object(trtmake, stage, output)
    damage(obj)
    assert trtmake(*FP16) == 0, trtmake.last_out
    st = _statuses(trtmake)
    assert st[stage] == "built"
    assert any(obj.name[:12] in w and "corrupt" in w for w in trtmake.report["targets"][0]["warnings"])
    assert_same_outcome(outcome(trtmake.report, trtmake.cache), before, f"{stage}.{output}")
    audit_objects(trtmake.cache)
    audit_records(trtmake.cache)


def _age_cache(cache: Path, seconds: float = 60) -> None:
    """Make every object older than the stat cache's racy window, so the stat cache trusts it."""
    old = time.time() - seconds
    for p in (cache / "objects").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))


@pytest.mark.parametrize("stage,output,then", [
    ("build", "engine", ()),  # handed out by the report: re-hashed on every run
    ("precision", "onnx", ()),  # the graph: handed out too
    ("reference", "outputs", ("revalidate=true",)),  # re-hashed when validation reads it
    ("source", "onnx", ("validation.num_samples=8",)),  # re-hashed when the reference stage reads it
], ids=["engine", "graph", "reference-when-read", "source-when-read"])
def test_bit_rot_that_keeps_size_mtime_and_inode_is_caught_before_use(trtmake, built, stage, output, then):
    before = built
    _age_cache(trtmake.cache)
    assert trtmake(*FP16) == 0  # all cached; the stat cache now trusts every object's (size, mtime, inode)
    stat_file = next((trtmake.cache / "stat").glob("*.json"))
    obj = _object(trtmake, stage, output)
    assert str(obj) in json.loads(stat_file.read_text())["entries"]
    flip_byte(obj, keep_stat=True)
    assert trtmake(*FP16, *then) == 0, trtmake.last_out
    st = _statuses(trtmake)
    assert st[stage] == "built", st
    assert any(obj.name[:12] in w and "corrupt" in w for w in trtmake.report["targets"][0]["warnings"])
    audit_objects(trtmake.cache)
    if not then:
        assert_same_outcome(outcome(trtmake.report, trtmake.cache), before, stage)


def test_garbled_action_records_are_misses_even_when_still_valid_json(trtmake, built):
    before = built
    recs = stage_records(trtmake.golden_report, trtmake.cache)
    validate = trtmake.cache / "actions" / recs["validate"]["key"][:2] / f"{recs['validate']['key']}.json"
    build = trtmake.cache / "actions" / recs["build"]["key"][:2] / f"{recs['build']['key']}.json"
    # valid JSON, plausible content: verdicts and metrics rewritten (a wrong verdict must never be served)
    rec = json.loads(validate.read_text())
    for a in rec["data"]["assertions"]:
        a["passed"], a["actual"] = not a["passed"], -1.0
    validate.write_text(json.dumps(rec))
    # not JSON at all, and an output digest that would escape the cache
    build.write_text(build.read_text()[:40])
    source = trtmake.cache / "actions" / recs["source"]["key"][:2] / f"{recs['source']['key']}.json"
    rec = json.loads(source.read_text())
    rec["outputs"]["onnx"]["digest"] = "../../../etc/passwd"
    source.write_text(json.dumps(rec))
    assert trtmake(*FP16) == 0, trtmake.last_out
    st = _statuses(trtmake)
    assert st["validate"] == "built" and st["build"] == "built" and st["source"] == "built"
    # the garbled validate record is only looked up when the rebuilt engine has the same bytes: ORT's
    # level-`all` engines are now and then not byte-identical (README, "does not promise")
    same_engine = trtmake.report["targets"][0]["engine"]["digest"] == trtmake.golden_report["targets"][0]["engine"]["digest"]
    assert sum("unreadable" in w for w in trtmake.report["targets"][0]["warnings"]) == (3 if same_engine else 2)
    assert_same_outcome(outcome(trtmake.report, trtmake.cache), before, "records")
    audit_records(trtmake.cache)


@pytest.mark.parametrize("garble", ["{not json", "[1, 2]", "check"], ids=["not-json", "a-list", "bad-checksum"])
def test_garbled_target_pointer_is_ignored_with_a_warning(trtmake, built, garble):
    pointer = trtmake.cache / "targets" / "tiny_cnn_fp16.json"
    if garble == "check":
        data = json.loads(pointer.read_text())
        data["stages"]["build"]["key"] = "0" * 64
        garble = json.dumps(data)
    pointer.write_text(garble)
    assert trtmake(*FP16, "validation.iters=7", command="explain") == 0
    assert "validate" in trtmake.last_out and "stale" in trtmake.last_out
    assert trtmake(*FP16) == 0
    assert set(_statuses(trtmake).values()) == {"cached"}
    assert any("pointer" in w for w in trtmake.report["targets"][0]["warnings"])
    assert trtmake(*FP16) == 0 and trtmake.report["targets"][0]["warnings"] == []  # rewritten whole


def _model(path: Path, seed: int) -> Path:
    import onnx

    from trtmake.models import build

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build("tiny_cnn", {"seed": seed}), str(path))
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


@pytest.mark.parametrize("garble", ["not-json", "entry-points-at-another-model"])
def test_garbled_stat_cache_is_dropped_never_trusted(trtmake, tmp_path, garble):
    a, b = _model(tmp_path / "a" / "model.onnx", 0), _model(tmp_path / "b" / "model.onnx", 1)
    args = ("target=tiny_cnn_fp32", "model.generator=null")
    assert trtmake(*args, f"model.path={b}") == 0
    engine_b = trtmake.report["targets"][0]["engine"]["digest"]
    assert trtmake(*args, f"model.path={a}") == 0
    engine_a = trtmake.report["targets"][0]["engine"]["digest"]
    assert engine_a != engine_b
    stat_file = next((trtmake.cache / "stat").glob("*.json"))
    data = json.loads(stat_file.read_text())
    if garble == "not-json":
        stat_file.write_text(stat_file.read_text()[:-20])
    else:  # still valid JSON: model a's entry now claims model b's digest (keeps a's size/mtime/inode)
        data["entries"][str(a)][3] = data["entries"][str(b)][3]
        stat_file.write_text(json.dumps(data))
    assert trtmake(*args, f"model.path={a}") == 0
    assert trtmake.report["targets"][0]["engine"]["digest"] == engine_a  # never b's engine
    assert set(_statuses(trtmake).values()) == {"cached"}
    assert any("stat cache" in w for w in trtmake.report["targets"][0]["warnings"])
    fresh = json.loads(stat_file.read_text())
    from trtmake.hashing import digest_file

    assert fresh["entries"][str(a)][3] == digest_file(a)  # rewritten from the bytes


HOLD_AND_DIE = """
import os, signal, sys
from filelock import FileLock
FileLock(sys.argv[1]).acquire()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_stale_lock_files_from_dead_processes_do_not_block(trtmake, tmp_path):
    """filelock uses flock(2): the kernel drops the lock when its holder dies, so a lock *file*
    left behind (by kill -9, or garbage in it) blocks nobody."""
    assert trtmake("target=tiny_cnn_fp32", "validation.iters=3") == 0
    keys = {s["name"]: s["key"] for s in trtmake.report["targets"][0]["stages"]}
    fresh = tmp_path / "fresh"
    locks = fresh / "locks"
    locks.mkdir(parents=True)
    for stage in ("source", "build"):  # a holder that took the lock and was killed holding it
        proc = subprocess.run([sys.executable, "-c", HOLD_AND_DIE, str(locks / f"{keys[stage]}.lock")])
        assert proc.returncode == -9
    (locks / f"{keys['precision']}.lock").write_bytes(os.urandom(64))  # garbage in a lock file
    trtmake.cache = fresh
    started = time.monotonic()
    assert trtmake("target=tiny_cnn_fp32", "validation.iters=3", "cache.lock_timeout_s=5") == 0
    assert time.monotonic() - started < 5
    assert set(_statuses(trtmake).values()) == {"built"}
