"""Processes sharing one cache build every stage key exactly once and reuse it;
TensorRT builds on one GPU are limited to `backend.tensorrt.max_builds_per_gpu` at a time."""

import json
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT
from trtmake.errors import BuildFailed
from trtmake.gpu_lock import gpu_slot, physical_device, slot_paths


# -- the GPU build semaphore ------------------------------------------------------------------
def _hold_slot(lock_dir, slots, log, hold_s):
    with gpu_slot(Path(lock_dir), 0, slots, timeout_s=60) as slot:
        start = time.monotonic()
        time.sleep(hold_s)
        with open(log, "a") as f:
            f.write(json.dumps([start, time.monotonic(), slot]) + "\n")


def _max_overlap(intervals):
    events = sorted([(s, 1) for s, e, _ in intervals] + [(e, -1) for s, e, _ in intervals])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("slots", [1, 2])
def test_gpu_slots_limit_concurrent_holders_across_threads(tmp_path, slots):
    log = tmp_path / "log.jsonl"
    threads = [threading.Thread(target=_hold_slot, args=(tmp_path, slots, log, 0.15)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    intervals = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(intervals) == 5
    assert _max_overlap(intervals) == slots  # never more than the limit, and the limit is used
    assert {i[2] for i in intervals} == set(range(slots))


def test_gpu_slot_limits_concurrent_holders_across_processes(tmp_path):
    log = tmp_path / "log.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hold_slot, args=(str(tmp_path), 1, str(log), 0.3)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    intervals = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(intervals) == 3 and _max_overlap(intervals) == 1


def test_waiting_for_a_gpu_slot_times_out_with_a_build_failure_naming_the_lock(tmp_path):
    with gpu_slot(tmp_path, 0, 1, timeout_s=5):
        with pytest.raises(BuildFailed, match="GPU build slot.*max_builds_per_gpu"):
            with gpu_slot(tmp_path, 0, 1, timeout_s=0.2, what="tiny/build"):
                pass
    with gpu_slot(tmp_path, 0, 1, timeout_s=0.2):  # released: free again
        pass


def test_a_slot_is_released_when_the_build_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with gpu_slot(tmp_path, 0, 1, timeout_s=1):
            raise RuntimeError("builder crashed")
    with gpu_slot(tmp_path, 0, 1, timeout_s=0.2):
        pass


def test_devices_have_separate_slots_named_by_host_and_physical_device(tmp_path, monkeypatch):
    with gpu_slot(tmp_path, 0, 1, timeout_s=1):
        with gpu_slot(tmp_path, 1, 1, timeout_s=0.2):  # another GPU: does not wait
            pass
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert physical_device(1) == "5"
    assert slot_paths(tmp_path, 1, 2)[1].name == "gpu5-slot1.lock"


def test_bad_max_builds_per_gpu_is_a_user_error(tmp_path):
    from trtmake.errors import UserError

    with pytest.raises(UserError, match="max_builds_per_gpu"):
        with gpu_slot(tmp_path, 0, 0, timeout_s=1):
            pass


def test_build_slot_takes_a_gpu_slot_only_for_tensorrt(tmp_path):
    from trtmake.backends.onnxruntime import OnnxruntimeBackend
    from trtmake.backends.tensorrt import TensorRTBackend

    options = TensorRTBackend().parse_options({"device": 0, "max_builds_per_gpu": 1})
    locks = tmp_path / "locks"
    with OnnxruntimeBackend().build_slot(OnnxruntimeBackend().parse_options({}), locks, 0.2, what="tiny/build"):
        assert not locks.exists()
    with TensorRTBackend().build_slot(options, locks, 0.2, what="tiny/build"):
        assert list((locks / "gpu").glob("*/gpu0-slot0.lock"))
        with pytest.raises(BuildFailed, match="tiny/build"):
            with TensorRTBackend().build_slot(options, locks, 0.2, what="tiny/build"):
                pass


class _Target(dict):
    name = "tiny"


# -- processes sharing one cache ---------------------------------------------------------------
def _built_once(reports):
    """Every stage key is `built` by exactly one job across all reports; the rest say `cached`."""
    built, seen = {}, set()
    for r in reports:
        for t in r["targets"]:
            assert t["ok"], t["error"]
            for s in t["stages"]:
                seen.add(s["key"])
                if s["status"] == "built":
                    built[s["key"]] = built.get(s["key"], 0) + 1
    assert set(built) == seen, "a key nobody built"
    assert set(built.values()) == {1}, {k[:12]: n for k, n in built.items() if n > 1}
    return seen


def _intact(cache: Path, keys):
    from trtmake.cache import Cache

    store = Cache(cache)
    for key in keys:
        record = store.get_record(key)
        assert record is not None, key
        for out in record.outputs.values():
            assert store.verify_object(out.digest, out.size, deep=True)
    assert not store.warnings


# Loaded by every Python process the tests start (joblib's workers too) through PYTHONPATH: logs
# each stage that really runs and how long each key lock was waited for, and slows the source
# stage down so that the processes do meet at its lock.
HOOK = """
import json, os, time
from contextlib import contextmanager
from trtmake import executor
from trtmake.cache import Cache

LOG, SLOW = os.environ["TRTMAKE_TEST_LOG"], float(os.environ["TRTMAKE_TEST_SLOW_S"])
_run, _lock = executor._run_and_publish, Cache.lock

def _write(**event):
    with open(LOG, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), **event}) + "\\n")

def run_and_publish(stage, ctx, key):
    _write(event="run", stage=stage.name, key=key.digest)
    if stage.name == "source":
        time.sleep(SLOW)
    return _run(stage, ctx, key)

@contextmanager
def lock(self, key, what):
    t = time.monotonic()
    with _lock(self, key, what):
        _write(event="lock", key=key, waited=time.monotonic() - t)
        yield

executor._run_and_publish, Cache.lock = run_and_publish, lock
"""


def _start(tmp_path, name, *args, slow_s):
    import os

    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
           "TRTMAKE_TEST_LOG": str(tmp_path / "events.jsonl"), "TRTMAKE_TEST_SLOW_S": str(slow_s)}
    env.pop("TRTMAKE_CACHE", None)
    return subprocess.Popen([sys.executable, "-m", "trtmake", *args, f"cache.dir={tmp_path / 'cache'}",
                             f"report.path={tmp_path / name}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _events(tmp_path):
    return [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]


def _check_each_key_ran_once_while_others_waited(tmp_path, keys):
    events = _events(tmp_path)
    runs = [e["key"] for e in events if e["event"] == "run"]
    assert sorted(runs) == sorted(keys)  # every key's stage ran exactly once, in one process
    waits = [e["waited"] for e in events if e["event"] == "lock"]
    assert max(waits) > 0.5, waits  # and another process really waited at its lock meanwhile


@pytest.mark.slow
def test_joblib_four_processes_build_every_shared_key_once(tmp_path):
    proc = _start(tmp_path, "report.json", "-m", "target=tiny_cnn_fp32,tiny_cnn_fp16", "validation.iters=5,10",
                  "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", slow_s=1.0)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["targets"]) == 4 and not any(t["job"]["in_process"] for t in report["targets"])
    keys = _built_once([report])
    assert len(keys) == 5 + 3 + 2  # fp32: 5; fp16 shares source and reference (3 own); 2 more validations
    _check_each_key_ran_once_while_others_waited(tmp_path, keys)
    _intact(tmp_path / "cache", keys)


@pytest.mark.slow
def test_four_concurrent_trtmake_processes_share_one_cache(tmp_path):
    jobs = [("a.json", "target=tiny_cnn_fp32"), ("b.json", "target=tiny_cnn_fp16"),
            ("c.json", "target=tiny_cnn_fp32"), ("d.json", "target=tiny_cnn_fp16")]
    procs = [_start(tmp_path, name, target, slow_s=2.0) for name, target in jobs]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    reports = [json.loads((tmp_path / name).read_text()) for name, _ in jobs]
    keys = _built_once(reports)
    assert len(keys) == 5 + 3
    _check_each_key_ran_once_while_others_waited(tmp_path, keys)
    _intact(tmp_path / "cache", keys)
    records = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "actions").glob("*/*.json")]
    assert {r["key"] for r in records if r.get("stage") != "index"} == keys


def test_build_stage_holds_a_gpu_slot_while_tensorrt_builds(tmp_path, monkeypatch):
    from trtmake.backends.base import BaseRunner
    from trtmake.backends.tensorrt import TensorRTBackend
    from trtmake.profiles import Profile
    from trtmake.stages import build as build_stage
    from trtmake.stages.base import StageInput

    seen = []

    def slot_taken():
        with pytest.raises(BuildFailed):
            with gpu_slot(tmp_path / "locks", 0, 1, timeout_s=0.1):
                pass
        return True

    class Runner(BaseRunner):  # the engine check after the build runs inside the slot too
        def activate_impl(self):
            seen.append(("load", slot_taken()))

        def deactivate_impl(self):
            pass

        def input_names_impl(self):
            return []

        def infer_impl(self, feeds):
            return {"y": 0}

        def time_impl(self, feeds, iters, warmup, on_step):
            return []

    class Backend(TensorRTBackend):  # the real slot policy; a build that checks its slot from inside
        def fingerprint(self, options):
            return {}

        def build(self, spec, workdir):
            seen.append(("build", slot_taken()))
            (workdir / "engine").write_bytes(b"engine")
            return SimpleNamespace(engine_path=workdir / "engine", log="", timing_cache_path=None,
                                   layer_info={}, extra={})

        def load(self, engine_path, options):
            return Runner("fake")

    backend = Backend()
    ctx = SimpleNamespace(backend=backend, options=backend.parse_options({"device": 0, "max_builds_per_gpu": 1}),
                          profile=Profile("b1"), profiles=(Profile("b1"),), name="tiny", path=lambda p: tmp_path / p,
                          cache=SimpleNamespace(root=tmp_path, locks_dir=tmp_path / "locks", lock_timeout_s=0.2),
                          artifacts={}, artifact=lambda name: SimpleNamespace(path=tmp_path / "graph.onnx"),
                          stage_data=lambda name: {"inputs": []})
    out = build_stage.BuildStage().run(StageInput({}, ctx), None, tmp_path)
    assert seen == [("build", True), ("load", True)] and out.files["engine"].read_bytes() == b"engine"
    with gpu_slot(tmp_path / "locks", 0, 1, timeout_s=0.1):  # released when the build returned
        pass