"""The remote cache end to end: runners (each its own cache.dir) sharing one remote, real builds
of tiny_cnn through trtmake's CLI, against moto's S3 server and a plain folder
(tests/remote_helpers.py); `trtmake cache` and `gc --remote` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remote_helpers import Spec, make_spec, spec_for
from trtmake.cli import main
from trtmake.commands.cache import plan_remote_gc

ROOT = Path(__file__).resolve().parents[1]
TARGET = "target=tiny_cnn_fp32"
FETCHED_ALL_BUT_VALIDATE = {"source": "fetched", "precision": "fetched", "build": "fetched",
                            "reference": "fetched", "validate": "built"}


@pytest.fixture(params=["s3", "dir"])
def spec(request, tmp_path):
    return spec_for(request, tmp_path)


@pytest.fixture(autouse=True)
def _no_ambient_remote(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TRTMAKE_REMOTE", raising=False)
    monkeypatch.delenv("TRTMAKE_CACHE", raising=False)


def build(tmp_path: Path, runner: str, *args: str) -> tuple[int, dict]:
    """One build on the runner whose cache is tmp_path/<runner>; the exit code and its report's target."""
    report = tmp_path / f"{runner}.json"
    code = main([TARGET, f"cache.dir={tmp_path / runner}", f"report.path={report}", *args])
    return code, json.loads(report.read_text())["targets"][0]


def statuses(entry: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in entry["stages"]}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trtmake", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)


def test_a_second_runner_fetches_every_stage_but_validate_unless_told_to_trust_it(spec, tmp_path):
    code, first = build(tmp_path, "a", *spec.overrides())
    assert code == 0 and set(statuses(first).values()) == {"built"}
    assert first["remote"]["bytes_out"] > 0 and first["remote"]["hits"] == 0
    assert spec.names("actions/") and "***" not in first["remote"]["url"]

    code, second = build(tmp_path, "b", *spec.overrides())
    assert code == 0 and statuses(second) == FETCHED_ALL_BUT_VALIDATE, second["warnings"]
    assert second["remote"]["hits"] == 4 and second["remote"]["bytes_in"] > 0 and not second["warnings"]
    assert second["metrics"]["cosine_similarity"] == pytest.approx(first["metrics"]["cosine_similarity"])

    # trust_remote keys validation by the device, not the host: the first runner to trust measures
    # and pushes, any later one with the same device and toolchain takes its measurement
    code, third = build(tmp_path, "c", *spec.overrides(), "validation.trust_remote=true")
    assert code == 0 and statuses(third) == FETCHED_ALL_BUT_VALIDATE
    code, fourth = build(tmp_path, "d", *spec.overrides(), "validation.trust_remote=true")
    assert code == 0 and set(statuses(fourth).values()) == {"fetched"}
    assert fourth["metrics"] == third["metrics"]  # the measurement pushed by the third runner
    code, again = build(tmp_path, "d", *spec.overrides(), "validation.trust_remote=true")
    assert code == 0 and set(statuses(again).values()) == {"cached"}
    code, own = build(tmp_path, "d", *spec.overrides())  # not trusting: its own host measures
    assert code == 0 and statuses(own)["validate"] == "built"


def test_a_read_only_runner_fetches_but_never_writes(spec, tmp_path):
    assert build(tmp_path, "a", *spec.overrides())[0] == 0
    before = spec.listing()
    # fewer timing iterations: a validate key the remote lacks, which read-write would push
    code, entry = build(tmp_path, "b", *spec.overrides(), "cache.remote.mode=read-only", "validation.iters=3")
    assert code == 0 and statuses(entry) == FETCHED_ALL_BUT_VALIDATE
    assert entry["remote"]["mode"] == "read-only" and entry["remote"]["bytes_out"] == 0
    assert spec.listing() == before


def test_a_corrupt_remote_engine_is_rebuilt_with_a_warning_and_healed_on_the_remote(spec, tmp_path):
    code, first = build(tmp_path, "a", *spec.overrides())
    engine = first["engine"]["digest"]
    rel = f"objects/{engine[:2]}/{engine}"
    good = spec.read(rel)
    spec.write(rel, good[:10] + bytes([good[10] ^ 0xFF]) + good[11:])

    code, entry = build(tmp_path, "b", *spec.overrides())
    assert code == 0
    assert statuses(entry) == {**FETCHED_ALL_BUT_VALIDATE, "build": "built"}
    assert any(engine[:12] in w and "corrupt" in w for w in entry["warnings"]), entry["warnings"]
    assert entry["engine"]["digest"] == engine  # the same engine, built here
    assert spec.read(rel) == good  # pushed again in place of the damaged copy


def test_trtmake_remote_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTMAKE_REMOTE", str(tmp_path / "shared"))
    assert build(tmp_path, "a")[0] == 0
    code, entry = build(tmp_path, "b")
    assert code == 0 and statuses(entry) == FETCHED_ALL_BUT_VALIDATE
    assert entry["remote"]["url"] == str(tmp_path / "shared")


def test_cache_push_pull_stats_and_gc_remote_through_the_cli(s3_endpoint, tmp_path):
    spec: Spec = make_spec("s3", tmp_path, s3_endpoint)
    assert build(tmp_path, "a")[0] == 0  # built with no remote at all
    assert spec.listing() == {}
    on = [*spec.overrides()]
    here = f"cache.dir={tmp_path / 'a'}"

    pushed = cli("cache", "push", TARGET, here, *on, "--json")
    assert pushed.returncode == 0, pushed.stderr
    result = json.loads(pushed.stdout)
    assert len(result["pushed"]) == 5 and not result["missing"] and result["bytes_out"] > 0
    keys = sorted(result["pushed"])
    assert spec.names("actions/") == sorted(f"actions/{k[:2]}/{k}.json" for k in keys)

    stats = json.loads(cli("cache", "stats", here, *on, "--json").stdout)
    assert stats["remote"]["records"] == 5 and stats["local"]["records"] >= 5 and stats["only_remote"] == 0
    assert stats["remote"]["objects"] == len(spec.names("objects/"))

    there = f"cache.dir={tmp_path / 'b'}"
    pulled = json.loads(cli("cache", "pull", TARGET, there, *on, "--json").stdout)
    # validate's record holds the host: pulled for a target only with trust_remote
    assert len(pulled["fetched"]) == 4 and len(pulled["missing"]) == 1, pulled
    everything = json.loads(cli("cache", "pull", there, *on, "--json").stdout)  # no target: every record
    assert sorted(everything["fetched"] + everything["present"]) == keys and not everything["missing"]
    assert build(tmp_path, "b", *on)[1]["stages"][-1]["status"] == "cached"

    listing = spec.listing()
    dry = cli("gc", "--remote", "--max-size", "0", "--dry-run", *on)
    assert dry.returncode == 0 and "would remove" in dry.stdout, dry.stderr
    assert spec.listing() == listing
    gone = cli("gc", "--remote", "--max-size", "0", *on)
    assert gone.returncode == 0, gone.stderr
    assert spec.names("actions/") == [] and spec.names("objects/") == []

    refused = cli("cache", "push", here, f"cache.remote.url={spec.url}", "cache.remote.mode=read-only",
                  f"++cache.remote.options.client_kwargs.endpoint_url={spec.endpoint}")
    assert refused.returncode == 2 and "read-only" in refused.stderr and len(refused.stderr) < 400
    nowhere = cli("cache", "stats", here, env={"TRTMAKE_REMOTE": ""})
    assert nowhere.returncode == 2 and "TRTMAKE_REMOTE" in nowhere.stderr


def test_cache_push_and_pull_of_a_target_use_the_remote_its_recipe_names(tmp_path):
    import shutil

    project, shared = tmp_path / "project", tmp_path / "shared"
    for folder in ("conf", "engine_recipes"):
        shutil.copytree(ROOT / folder, project / folder)
    recipe = project / "engine_recipes" / "target" / "tiny_cnn_fp32.yaml"
    recipe.write_text(recipe.read_text() + f"\ncache:\n  remote:\n    url: {shared}\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trtmake", *args], cwd=project, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "TRTMAKE_PROJECT": str(project)}, timeout=120)

    a, b = f"cache.dir={tmp_path / 'a'}", f"cache.dir={tmp_path / 'b'}"
    built = run(TARGET, a, "cache.remote.mode=off", f"report.path={tmp_path / 'a.json'}")
    assert built.returncode == 0, built.stderr
    assert not shared.exists()
    pushed = run("cache", "push", TARGET, a, "--json")  # no remote on the command line: the recipe's
    assert pushed.returncode == 0, pushed.stderr
    keys = sorted(json.loads(pushed.stdout)["pushed"])
    assert len(keys) == 5 and sorted(p.stem for p in shared.glob("actions/*/*.json")) == keys
    pulled = run("cache", "pull", TARGET, b, "--json")
    assert pulled.returncode == 0, pulled.stderr
    assert len(json.loads(pulled.stdout)["fetched"]) == 4  # all but validate's host-bound record
    off = run("cache", "push", TARGET, a, "cache.remote.mode=off")  # the command line still has the last word
    assert off.returncode == 2 and "target=tiny_cnn_fp32" in off.stderr and "no remote cache" in off.stderr
    assert run("cache", "stats", a).returncode == 2  # no target: the command line and TRTMAKE_REMOTE only


def test_remote_gc_drops_the_oldest_records_first_and_then_the_objects_nobody_names():
    day = 86400.0
    records = {"old": (100, 1 * day), "mid": (100, 2 * day), "new": (100, 3 * day), "bad": (50, 3 * day)}
    named = {"old": {"x", "shared"}, "mid": {"y", "shared"}, "new": {"z"}, "bad": None}
    objects = {"x": (1000, 0), "y": (1000, 0), "z": (1000, 0), "shared": (5000, 0),
               "orphan": (10, 0), "pushing": (10, 10 * day)}
    # 4 records (350) + objects (8020): fitting 2500 drops the unreadable record, then old, then mid
    drop, free = plan_remote_gc(records, named, objects, budget=2500, now=10 * day + 60)
    assert drop == ["bad", "old", "mid"]
    assert free == ["orphan", "shared", "x", "y"]  # "pushing" is a minute old: maybe a push in progress
    drop, free = plan_remote_gc(records, named, objects, budget=10**9, now=10 * day + 60)
    assert drop == ["bad"] and free == ["orphan"]


@pytest.mark.parametrize("override, key", [("cache.remote.mode=sometimes", "cache.remote.mode"),
                                           ("validation.trust_remote=maybe", "validation.trust_remote")])
def test_a_bad_remote_setting_is_one_line_exit_2_and_nothing_is_cached(tmp_path, capsys, override, key):
    code = main([TARGET, f"cache.dir={tmp_path / 'a'}", f"report.path={tmp_path / 'r.json'}",
                 f"cache.remote.url={tmp_path / 'remote'}", override])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and key in err, err
    assert not (tmp_path / "remote").exists() and not list((tmp_path / "a").glob("actions/*/*.json"))
