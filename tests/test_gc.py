"""`gc` shrinks the cache least recently used first and keeps what targets' last
runs need (unless --all); `clean` drops one target; the cache is found by config or env;
`merge-timing-cache` collects the timing caches that builds produced."""

import json
import os
import time

import pytest

from trtmake.cache_dir import resolve_cache_dir
from trtmake.commands.gc import parse_size, plan_gc, scan


def _records(cache):
    return {p.stem: json.loads(p.read_text()) for p in (cache / "actions").glob("*/*.json")}


def _validate_key(trtmake, index=0):
    return next(s["key"] for s in trtmake.report["targets"][index]["stages"] if s["name"] == "validate")


def _age(path, seconds_ago):
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def _action(cache, key):
    return cache / "actions" / key[:2] / f"{key}.json"


def _cmd(trtmake, command, *args):
    """gc, clean, merge-timing-cache on the fixture's cache (they take no report.path)."""
    from trtmake.cli import main

    code = main([command, f"cache.dir={trtmake.cache}", *args])
    out = trtmake.capsys.readouterr()
    trtmake.last_out, trtmake.last_err = out.out, out.err
    return code


@pytest.mark.parametrize("text, value", [("10GB", 10**10), ("500MB", 5 * 10**8), ("2GiB", 2 * 2**30),
                                         ("0", 0), ("1.5k", 1500), ("123", 123)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_gc_keeps_every_record_a_last_run_needs(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "validation.iters=5") == 0
    old = _validate_key(trtmake)
    assert trtmake("target=tiny_cnn_fp32") == 0
    live = {s["key"] for s in trtmake.report["targets"][0]["stages"]}
    assert _cmd(trtmake, "gc", "--max-size", "0") == 0
    assert "removed: records" in trtmake.last_out and "still over budget" in trtmake.last_out
    assert set(_records(trtmake.cache)) == live and old not in live
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert set(trtmake.statuses().values()) == {"cached"}  # nothing the last run needs was removed


def test_gc_removes_least_recently_used_first_and_a_cache_hit_counts_as_use(trtmake):
    keys = []
    for iters in (5, 6, 7):
        assert trtmake("target=tiny_cnn_fp32", f"validation.iters={iters}") == 0
        keys.append(_validate_key(trtmake))
    assert trtmake("target=tiny_cnn_fp32") == 0  # the last run: iters 5, 6, 7 are not needed any more
    for age, key in zip((300, 200, 100), keys):
        _age(_action(trtmake.cache, key), age)  # iters=5 is the least recently used ...
    assert trtmake("target=tiny_cnn_fp32", "validation.iters=5") == 0  # ... until this cache hit
    assert trtmake.statuses()["validate"] == "cached"
    assert trtmake("target=tiny_cnn_fp32") == 0
    size = scan(trtmake.cache).size
    one = _action(trtmake.cache, keys[1]).stat().st_size
    assert _cmd(trtmake, "gc", "--max-size", str(size - one)) == 0
    assert set(keys) - set(_records(trtmake.cache)) == {keys[1]}  # iters=6 went, iters=5 stayed


def test_gc_all_may_remove_what_last_runs_need(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert _cmd(trtmake, "gc", "--max-size", "0", "--all") == 0
    assert not list((trtmake.cache / "objects").glob("*/*")) and not _records(trtmake.cache)
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert set(trtmake.statuses().values()) == {"built"}


def test_gc_dry_run_removes_nothing(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    before = trtmake.cache_files()
    assert _cmd(trtmake, "gc", "--max-size", "0", "--all", "--dry-run") == 0
    assert "would remove" in trtmake.last_out and trtmake.cache_files() == before
    assert "would free" in trtmake.last_out and "freed" not in trtmake.last_out


def test_gc_all_drops_the_pointers_of_removed_runs_so_status_says_never_built(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert _cmd(trtmake, "gc", "--max-size", "0", "--all") == 0
    assert not list((trtmake.cache / "targets").glob("*.json"))
    assert trtmake("--json", "target=tiny_cnn_fp32", command="status") == 0
    row = json.loads(trtmake.last_out)["targets"][0]
    assert row["state"] == "stale" and "never built" in row["why"], row


def test_gc_collects_run_and_sweep_folders_by_age_and_all_with_all(trtmake):
    assert trtmake("-m", "target=tiny_cnn_fp32", "validation.iters=5,6") == 0
    assert trtmake("target=tiny_cnn_fp32") == 0
    runs, sweeps = list((trtmake.cache / "runs").iterdir()), list((trtmake.cache / "sweeps").iterdir())
    assert runs and sweeps
    for path in [sweeps[0], *sweeps[0].rglob("*")]:
        _age(path, 2 * 86400)
    assert _cmd(trtmake, "gc", "--max-size", "10GB") == 0
    assert not sweeps[0].exists() and all(r.exists() for r in runs)
    assert "run folders" in trtmake.last_out
    assert _cmd(trtmake, "gc", "--max-size", "10GB", "--all") == 0
    assert not list((trtmake.cache / "runs").iterdir()) and not list((trtmake.cache / "sweeps").iterdir())


def test_gc_removes_orphan_objects_and_old_work_dirs_after_a_grace_period(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    objects = trtmake.cache / "objects" / "00"
    objects.mkdir(parents=True, exist_ok=True)
    old, new = objects / ("0" * 64), objects / ("0" * 63 + "1")
    for p in (old, new):
        p.write_bytes(b"x" * 1000)
    _age(old, 7200)
    crashed = trtmake.cache / "tmp" / "build-crashed"
    crashed.mkdir(parents=True)
    (crashed / "engine").write_bytes(b"y" * 500)
    _age(crashed, 2 * 86400)
    assert _cmd(trtmake, "gc", "--max-size", "10GB") == 0
    assert not old.exists() and new.exists() and not crashed.exists()  # new: maybe a build publishing now
    assert trtmake("target=tiny_cnn_fp32") == 0 and set(trtmake.statuses().values()) == {"cached"}


def test_gc_plan_orders_unneeded_records_by_last_use(trtmake):
    assert trtmake("-m", "target=tiny_cnn_fp32", "validation.iters=5,6") == 0
    assert trtmake("target=tiny_cnn_fp32") == 0
    inv = scan(trtmake.cache)
    plan = plan_gc(inv, budget=0, include_live=False)
    live = inv.live_keys()
    assert plan.records and not set(plan.records) & live
    times = [inv.records[k].mtime for k in plan.records]
    assert times == sorted(times)


def test_clean_removes_the_target_pointer_and_only_what_no_other_target_uses(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    fp32 = trtmake.report["targets"][0]
    assert trtmake("target=tiny_cnn_fp16") == 0
    assert _cmd(trtmake, "clean", "target=tiny_cnn_fp16") == 0
    assert "removed: pointers" in trtmake.last_out
    assert not (trtmake.cache / "targets" / "tiny_cnn_fp16.json").exists()
    assert (trtmake.cache / "targets" / "tiny_cnn_fp32.json").exists()
    records = _records(trtmake.cache)
    assert {s["key"] for s in fp32["stages"]} <= set(records)
    assert (trtmake.cache / "objects" / fp32["engine"]["digest"][:2] / fp32["engine"]["digest"]).exists()
    assert trtmake("target=tiny_cnn_fp16") == 0
    # source and reference are shared with tiny_cnn_fp32's last run: kept; the rest was fp16's own
    assert trtmake.statuses() == {"source": "cached", "precision": "built", "build": "built",
                                  "reference": "cached", "validate": "built"}


def test_clean_of_an_unknown_target_is_one_line_exit_2(trtmake):
    assert _cmd(trtmake, "clean", "target=nope") == 2
    assert len(trtmake.last_err.strip().splitlines()) == 1 and "target=nope" in trtmake.last_err


def test_cache_dir_comes_from_the_override_the_env_or_the_default(tmp_path, monkeypatch):
    from conftest import ROOT

    monkeypatch.delenv("TRTMAKE_CACHE", raising=False)
    assert resolve_cache_dir(ROOT, []) == ROOT / "cache"
    monkeypatch.setenv("TRTMAKE_CACHE", str(tmp_path / "shared"))
    assert resolve_cache_dir(ROOT, []) == tmp_path / "shared"
    assert resolve_cache_dir(ROOT, [f"cache.dir={tmp_path / 'x'}"]) == tmp_path / "x"
    assert resolve_cache_dir(ROOT, ["cache.dir=rel"]) == ROOT / "rel"
    assert resolve_cache_dir(ROOT, ["cache.dir=a", "cache.dir=b"]) == ROOT / "b"  # the last one wins


def test_one_cache_dir_rule_for_targets_plans_and_commands(tmp_path, monkeypatch):
    from conftest import ROOT

    from trtmake import plan_cache
    from trtmake.errors import UserError
    from trtmake.target import Target

    monkeypatch.setenv("TRTMAKE_CACHE", str(tmp_path / "env"))
    monkeypatch.setenv("TRTMAKE_TEST_CACHE", str(tmp_path / "interp"))
    assert plan_cache.plan_dir(ROOT, []) == tmp_path / "env" / "plans"
    assert plan_cache.plan_dir(ROOT, ["cache.dir=rel"]) == resolve_cache_dir(ROOT, ["cache.dir=rel"]) / "plans"
    assert Target("t", (), ROOT, {"cache": {"dir": "rel"}}).cache_dir == ROOT / "rel"
    interpolated = ["cache.dir=${oc.env:TRTMAKE_TEST_CACHE}/c"]
    assert resolve_cache_dir(ROOT, interpolated) == tmp_path / "interp" / "c"
    assert plan_cache.plan_dir(ROOT, interpolated) == ROOT / "cache" / "plans"  # not known before composing
    with pytest.raises(UserError, match="cache.dir: cannot resolve"):
        resolve_cache_dir(ROOT, ["cache.dir=${oc.env:TRTMAKE_NOT_SET_ANYWHERE}"])


def test_gc_removes_a_record_that_fails_its_checksum(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    key = _validate_key(trtmake)
    record = json.loads(_action(trtmake.cache, key).read_text())
    _action(trtmake.cache, key).write_text(json.dumps({**record, "seconds": 0.5}))  # still JSON, checksum wrong
    assert _cmd(trtmake, "gc", "--max-size", "10GB", "--dry-run") == 0
    assert "would remove: records" in trtmake.last_out and _action(trtmake.cache, key).exists()
    assert _cmd(trtmake, "gc", "--max-size", "10GB") == 0
    assert set(_records(trtmake.cache)) == {s["key"] for s in trtmake.report["targets"][0]["stages"]} - {key}


def test_gc_finds_the_cache_through_TRTMAKE_CACHE(trtmake, monkeypatch, capsys):
    from trtmake.cli import main

    assert trtmake("target=tiny_cnn_fp32") == 0
    monkeypatch.setenv("TRTMAKE_CACHE", str(trtmake.cache))
    assert main(["gc", "--max-size", "0", "--all"]) == 0
    assert str(trtmake.cache) in capsys.readouterr().out
    assert not _records(trtmake.cache)


def _fake_build_record(cache, key, blob: bytes):
    from trtmake.cache import ActionRecord, Cache, Output

    store = Cache(cache)
    store.ensure_writable()
    tc = cache / "tmp" / f"tc-{key[:4]}"
    tc.write_bytes(blob)
    out = store.put_file(tc)
    store.put_action(ActionRecord(key, {"timing_cache": Output(**out)}, stage="build", target="t"))
    return store.object_path(out["digest"])


def test_merge_timing_cache_collects_produced_caches_from_build_records(trtmake, tmp_path, monkeypatch):
    import trtmake.commands.timing_cache as timing_cache_cmd

    produced = [_fake_build_record(trtmake.cache, k * 64, blob) for k, blob in (("a", b"one"), ("b", b"two"))]
    calls = []

    def fake_merge(pinned, paths):
        calls.append((pinned, list(paths)))
        return {"pinned": str(pinned), "merged": [str(p) for p in paths], "rejected": [], "changed": True,
                "sha256_after": "f" * 64, "bytes": 6}

    monkeypatch.setattr(timing_cache_cmd, "merge_timing_caches", fake_merge)  # the name the command calls
    pinned = tmp_path / "team.cache"
    assert _cmd(trtmake, "merge-timing-cache", str(pinned)) == 0
    assert calls == [(pinned, produced)]
    assert "merged" in trtmake.last_out and "updated" in trtmake.last_out


def test_merge_timing_cache_without_tensorrt_is_one_line_exit_2(trtmake, tmp_path):
    pytest.importorskip("trtmake.backends.tensorrt")
    from importlib.util import find_spec

    if find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    _fake_build_record(trtmake.cache, "c" * 64, b"three")
    assert _cmd(trtmake, "merge-timing-cache", str(tmp_path / "team.cache")) == 2
    err = trtmake.last_err.strip()
    assert len(err.splitlines()) == 1 and "tensorrt" in err.lower()


def test_merge_timing_cache_with_nothing_produced_says_so(trtmake, tmp_path):
    assert _cmd(trtmake, "merge-timing-cache", str(tmp_path / "team.cache")) == 0
    assert "nothing to merge" in trtmake.last_out


def test_gc_removes_week_old_plans_and_all_plans_with_all(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert trtmake("target=tiny_cnn_fp16") == 0
    plans = sorted((trtmake.cache / "plans").glob("*/*.json"))
    assert len(plans) == 2  # one composed target each
    _age(plans[0], 8 * 86400)
    assert _cmd(trtmake, "gc", "--max-size", "10GB") == 0
    assert not plans[0].exists() and plans[1].exists()
    assert "plans" in trtmake.last_out
    assert _cmd(trtmake, "gc", "--max-size", "10GB", "--all") == 0
    assert not list((trtmake.cache / "plans").glob("*/*.json"))
    assert trtmake("target=tiny_cnn_fp32") == 0 and set(trtmake.statuses().values()) == {"cached"}
