"""Eight trtmake processes on one cache; the bounded wait on a held key lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import defaultdict

import pytest

from fault_helpers import (ROOT, audit_objects, audit_records, cli_env, records, run, served_files_are_objects,
                           start, stray_temp_files)

pytestmark = pytest.mark.faults

JOBS = [
    ("target=tiny_cnn_fp32",),
    ("target=tiny_cnn_fp32",),
    ("target=tiny_cnn_fp32",),
    ("target=tiny_cnn_fp16",),
    ("target=tiny_cnn_fp16",),
    ("target=tiny_cnn_fp32", "validation.iters=10"),
    ("target=tiny_cnn_fp16", "validation.iters=10"),
    ("target=tiny_cnn_fp32", "precision=fp16"),  # the fp16 target's precision + build keys, other validation
]


def test_eight_processes_one_cache_build_each_key_once(tmp_path):
    cache = tmp_path / "cache"
    procs = [start(cache, tmp_path / f"report{i}.json", *args) for i, args in enumerate(JOBS)]
    deadline = time.monotonic() + 240  # a deadlock fails here instead of hanging CI
    for i, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail(f"job {i} {JOBS[i]} still running after 240 s: deadlock?")
        assert proc.returncode == 0, (JOBS[i], out[-2000:], err[-2000:])

    builders: dict[str, list[int]] = defaultdict(list)  # key -> pids of the processes that built it
    users: dict[str, int] = defaultdict(int)
    for i, proc in enumerate(procs):
        report = json.loads((tmp_path / f"report{i}.json").read_text())
        served_files_are_objects(report, cache)
        for stage in report["targets"][0]["stages"]:
            assert stage["status"] in ("built", "cached"), (JOBS[i], stage)
            users[stage["key"]] += 1
            if stage["status"] == "built":
                builders[stage["key"]].append(proc.pid)
    recs = audit_records(cache)
    audit_objects(cache)
    assert stray_temp_files(cache) == []
    assert set(users) <= set(recs)
    for key, n in users.items():
        assert len(builders[key]) == 1, f"key {key[:12]} ({recs[key]['stage']}) built by {builders[key]} of {n} users"
        assert recs[key]["pid"] == builders[key][0]  # the record names the process that built it
    shared = [k for k, n in users.items() if n > 1]
    assert len(shared) >= 5  # the jobs really overlapped: source, precision, build, reference shared
    for pointer in (cache / "targets").glob("*.json"):  # written by several processes: one whole winner
        data = json.loads(pointer.read_text())
        assert set(data["stages"]) >= {"source", "build", "validate"}

    # and the cache they left is complete: every job is now a pure cache hit
    again = run(cache, tmp_path / "again.json", *JOBS[-1])
    assert again.returncode == 0
    assert {s["status"] for s in json.loads((tmp_path / "again.json").read_text())["targets"][0]["stages"]} == {"cached"}


HOLD = textwrap.dedent("""
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def hold_lock(path) -> subprocess.Popen:
    """Another process holding a key's lock (as a trtmake building that key would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture(scope="module")
def fp32_keys(tmp_path_factory) -> dict[str, str]:
    """stage -> key of tiny_cnn_fp32 (keys do not depend on the cache directory)."""
    tmp = tmp_path_factory.mktemp("keys")
    proc = run(tmp / "cache", tmp / "report.json", "target=tiny_cnn_fp32")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {s["name"]: s["key"] for s in json.loads((tmp / "report.json").read_text())["targets"][0]["stages"]}


def test_held_lock_times_out_with_a_message_naming_the_lock(tmp_path, fp32_keys):
    cache = tmp_path / "cache"
    lock = cache / "locks" / f"{fp32_keys['build']}.lock"
    holder = hold_lock(lock)
    try:
        started = time.monotonic()
        proc = run(cache, tmp_path / "report.json", "target=tiny_cnn_fp32", "cache.lock_timeout_s=0.5")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert waited < 30
    error = json.loads((tmp_path / "report.json").read_text())["targets"][0]["error"]
    assert str(lock) in error and "cache.lock_timeout_s" in error and "0.5 s" in error, error
    assert str(lock) in "".join(proc.stdout.split())  # the summary's error line (rich may wrap it)
    st = {s["name"]: s["status"] for s in json.loads((tmp_path / "report.json").read_text())["targets"][0]["stages"]}
    assert st["source"] == st["precision"] == "built" and st["build"] == "failed" and st["validate"] == "skipped"
    # the holder is gone: the same command now builds (its lock is free, the file stays)
    assert lock.exists()
    assert run(cache, tmp_path / "report.json", "target=tiny_cnn_fp32", "cache.lock_timeout_s=0.5").returncode == 0
