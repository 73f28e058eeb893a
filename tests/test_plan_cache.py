"""The plan cache (trtmake/plan_cache.py). A composed target is reused while no file
that composition could read changed; an edited recipe, a changed environment variable the
config reads, or a file edited within the racy window is composed again."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import ROOT
from trtmake import plan_cache


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project's config (conf/, engine_recipes/), aged past the racy window."""
    root = tmp_path / "project"
    for folder in ("conf", "engine_recipes"):
        shutil.copytree(ROOT / folder, root / folder)
    _age(root)
    monkeypatch.setenv("TRTMAKE_PROJECT", str(root))
    monkeypatch.chdir(root)
    return root


def _age(root: Path, seconds: float = 60) -> None:
    old = time.time() - seconds
    for p in root.rglob("*.yaml"):
        os.utime(p, (old, old))


class Counter:
    def __init__(self, monkeypatch):
        self.status_composes = 0
        self.hydra_runs = 0
        from trtmake import planner

        real_composer, real_run = planner.composer, planner.run_hydra

        def composer(*args):
            inner = real_composer(*args)

            def counted(*a):
                self.status_composes += 1
                return inner(*a)
            return counted

        def run(*args):
            self.hydra_runs += 1
            return real_run(*args)

        monkeypatch.setattr(planner, "composer", composer)
        monkeypatch.setattr(planner, "run_hydra", run)


def _rows(trtmake, *args):
    code = trtmake("--json", *args, command="status")
    return code, {r["target"]: r for r in json.loads(trtmake.last_out)["targets"]}


def test_unchanged_tree_reuses_the_plan_and_composes_nothing(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert counter.hydra_runs == 1
    assert trtmake("target=tiny_cnn_fp32") == 0  # up to date: the stored plan stands in for Hydra
    assert counter.hydra_runs == 1
    assert set(trtmake.statuses().values()) == {"cached"}
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32")  # status shares the build's plan
    assert code == 0 and rows["tiny_cnn_fp32"]["state"] == "up to date"
    assert counter.status_composes == 0 and counter.hydra_runs == 1


def test_status_composes_only_targets_without_a_plan(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    _rows(trtmake, "target=tiny_cnn_fp*")
    assert counter.status_composes == 2
    _rows(trtmake, "target=tiny_cnn_*")
    assert counter.status_composes == 3  # only tiny_cnn_int8 was new


def test_editing_a_recipe_invalidates_the_plan(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    assert trtmake("target=tiny_cnn_fp32") == 0
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32")
    assert rows["tiny_cnn_fp32"]["state"] == "up to date" and counter.status_composes == 0
    recipe = project / "engine_recipes" / "validation" / "default.yaml"
    text = recipe.read_text()
    assert "iters: 30" in text
    old = recipe.stat().st_mtime
    recipe.write_text(text.replace("iters: 30", "iters: 7"))
    os.utime(recipe, (old + 5, old + 5))  # a new mtime, still outside the racy window
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32")
    assert counter.status_composes == 1
    assert rows["tiny_cnn_fp32"]["state"] == "stale" and rows["tiny_cnn_fp32"]["stage"] == "validate"
    assert "config.iters: 30 -> 7" in rows["tiny_cnn_fp32"]["why"]
    _rows(trtmake, "target=tiny_cnn_fp32")
    assert counter.status_composes == 1  # the new plan is reused


def test_a_new_recipe_file_invalidates_the_plan(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    _rows(trtmake, "target=tiny_cnn_fp32")
    extra = project / "engine_recipes" / "profile" / "extra.yaml"
    extra.write_text((project / "engine_recipes" / "profile" / "tiny_b1.yaml").read_text())
    _age(project)
    _rows(trtmake, "target=tiny_cnn_fp32")
    assert counter.status_composes == 2


def test_a_recipe_edited_within_the_racy_window_is_not_trusted(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    recipe = project / "engine_recipes" / "validation" / "default.yaml"
    os.utime(recipe)  # just now: an edit in the same mtime tick would be invisible to a stat
    _rows(trtmake, "target=tiny_cnn_fp32")
    _rows(trtmake, "target=tiny_cnn_fp32")
    assert counter.status_composes == 2


def test_environment_read_by_the_config_is_part_of_the_plan(trtmake, project, monkeypatch):
    recipe = project / "engine_recipes" / "validation" / "default.yaml"
    recipe.write_text(recipe.read_text().replace("iters: 30", "iters: ${oc.env:TRTMAKE_TEST_ITERS,30}"))
    _age(project)
    monkeypatch.delenv("TRTMAKE_TEST_ITERS", raising=False)
    assert trtmake("target=tiny_cnn_fp32") == 0
    [plan_file] = (trtmake.cache / "plans").glob("*/*.json")
    assert json.loads(plan_file.read_text())["env"]["TRTMAKE_TEST_ITERS"] is None
    monkeypatch.setenv("TRTMAKE_TEST_ITERS", "7")
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32")
    assert rows["tiny_cnn_fp32"]["state"] == "stale" and "config.iters: 30 -> 7" in rows["tiny_cnn_fp32"]["why"]


def test_a_non_deterministic_resolver_makes_plans_uncacheable(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    recipe = project / "engine_recipes" / "target" / "tiny_cnn_fp32.yaml"
    recipe.write_text(recipe.read_text().replace("FP32", "FP32 built ${now:%H-%M-%S}"))
    _age(project)
    _rows(trtmake, "target=tiny_cnn_fp32")
    _rows(trtmake, "target=tiny_cnn_fp32")
    assert counter.status_composes == 2
    assert not list((trtmake.cache / "plans").glob("*/*.json"))


def test_plan_cache_can_be_turned_off(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    monkeypatch.setenv("TRTMAKE_PLAN_CACHE", "0")
    _rows(trtmake, "target=tiny_cnn_fp32")
    _rows(trtmake, "target=tiny_cnn_fp32")
    assert counter.status_composes == 2
    assert not (trtmake.cache / "plans").exists()


def test_a_garbled_plan_is_composed_again(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    _rows(trtmake, "target=tiny_cnn_fp32")
    [plan_file] = (trtmake.cache / "plans").glob("*/*.json")
    data = json.loads(plan_file.read_text())
    data["target"]["cfg"]["validation"]["iters"] = 1  # still valid JSON, but not what was composed
    plan_file.write_text(json.dumps(data))
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32")
    assert counter.status_composes == 2 and code == 0


def test_a_target_composed_with_an_extra_search_path_is_never_planned(trtmake, project, monkeypatch, tmp_path):
    counter = Counter(monkeypatch)
    extra = tmp_path / "more_recipes" / "validation"
    extra.mkdir(parents=True)
    recipe = extra / "mine.yaml"
    recipe.write_text((project / "engine_recipes" / "validation" / "default.yaml").read_text())
    _age(tmp_path / "more_recipes")
    args = ("target=tiny_cnn_fp32", "validation=mine", f"hydra.searchpath=[file://{extra.parent}]")
    assert trtmake(*args) == 0 and trtmake(*args) == 0
    assert counter.hydra_runs == 2  # the folder is not watched: composed every time
    text = recipe.read_text()
    recipe.write_text(text.replace("iters: 30", "iters: 7"))
    _age(tmp_path / "more_recipes")
    assert trtmake(*args) == 0
    assert trtmake.statuses()["validate"] == "built"  # the edit was seen


def test_a_config_that_sets_hydra_job_env_set_is_composed_every_time(trtmake, project, monkeypatch):
    counter = Counter(monkeypatch)
    monkeypatch.setenv("PLAN_TEST_ENV_SET", "0")  # restored after the test: Hydra sets it for the job
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("    chdir: false\n", "    chdir: false\n    env_set:\n"
                                                 "      PLAN_TEST_ENV_SET: '1'\n"))
    _age(project)
    assert trtmake("target=tiny_cnn_fp32") == 0 and trtmake("target=tiny_cnn_fp32") == 0
    assert counter.hydra_runs == 2  # a plan would run without Hydra, which is what applies env_set
    assert not (trtmake.cache / "plans").exists()
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32")  # nor does status store one
    assert code == 0 and not (trtmake.cache / "plans").exists()


class SweepCounter:
    """How often a sweep composed a job (the sweeper's check) and launched a batch."""

    def __init__(self, monkeypatch):
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.core_plugins.basic_launcher import BasicLauncher

        self.composed, self.launched = 0, 0
        real_load, real_launch = ConfigLoaderImpl.load_sweep_config, BasicLauncher.launch

        def load(loader, *a, **k):
            self.composed += 1
            return real_load(loader, *a, **k)

        def launch(launcher, job_overrides, *a, **k):
            self.launched += len(job_overrides)
            return real_launch(launcher, job_overrides, *a, **k)

        monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", load)
        monkeypatch.setattr(BasicLauncher, "launch", launch)


def test_a_multirun_runs_planned_up_to_date_jobs_without_composing_or_launching(trtmake, project, monkeypatch):
    sweep = ("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16")
    first = SweepCounter(monkeypatch)
    assert trtmake(*sweep) == 0
    assert (first.composed, first.launched) == (4, 2)  # sweeper and launcher compose each job; plans stored
    again = SweepCounter(monkeypatch)
    assert trtmake(*sweep) == 0
    assert (again.composed, again.launched) == (0, 0)
    targets = trtmake.report["targets"]
    assert [t["label"] for t in targets] == ["tiny_cnn_fp32", "tiny_cnn_fp16"]
    assert all(s["status"] == "cached" for t in targets for s in t["stages"]) and all(t["ok"] for t in targets)
    assert trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16", command="explain") == 0
    assert (again.composed, again.launched) == (0, 0) and trtmake.last_out.count("up to date") == 10
    stale = SweepCounter(monkeypatch)
    (project / "engine_recipes" / "validation" / "default.yaml").write_text(
        (project / "engine_recipes" / "validation" / "default.yaml").read_text().replace("iters: 30", "iters: 9"))
    _age(project)
    assert trtmake(*sweep) == 0  # an edited recipe: every plan is stale, both jobs compose and launch again
    assert (stale.composed, stale.launched) == (4, 2)
    assert {t["label"]: {s["name"]: s["status"] for s in t["stages"]}["validate"] for t in trtmake.report["targets"]} \
        == {"tiny_cnn_fp32": "built", "tiny_cnn_fp16": "built"}


def test_a_planned_job_that_has_something_to_build_is_launched(trtmake, project, monkeypatch):
    assert trtmake("target=tiny_cnn_fp32") == 0  # stores the plan
    counter = SweepCounter(monkeypatch)
    assert trtmake("-m", "target=tiny_cnn_fp32", "revalidate=true") == 0  # validate always runs: not a no-op
    assert (counter.composed, counter.launched) == (2, 1)
    assert {s["name"]: s["status"] for s in trtmake.report["targets"][0]["stages"]}["validate"] == "built"


def test_plans_stand_in_for_jobs_only_when_they_run_on_this_machine(trtmake, project, monkeypatch):
    from omegaconf import OmegaConf

    from trtmake.planner import Request
    from trtmake.sweep import Plans

    assert trtmake("target=tiny_cnn_fp32") == 0
    config = OmegaConf.create({"hydra": {"job": {"env_set": {}}}})
    request = Request("build", project, progress=False, cli_pid=os.getpid())
    job = [f"cache.dir={trtmake.cache}", f"report.path={trtmake.report_path}", "target=tiny_cnn_fp32"]
    SlurmLauncher = type("SlurmLauncher", (), {})  # a job there has another toolchain (its GPU, its CPU)
    BasicLauncher = type("BasicLauncher", (), {})
    assert Plans(config, SlurmLauncher(), request).up_to_date_entry(job) is None
    here = Plans(config, BasicLauncher(), request).up_to_date_entry(job)
    assert here is not None and here["job"]["from_plan"] and {s["status"] for s in here["stages"]} == {"cached"}
    config.hydra.job.env_set.OMP_NUM_THREADS = "1"  # only Hydra applies env_set around a job
    assert Plans(config, BasicLauncher(), request).up_to_date_entry(job) is None
