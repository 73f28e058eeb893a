"""Kill -9 at random moments (and at named points of the publish protocol).

Each trial starts `python -m trtmake` on a fresh cache and SIGKILLs it. After every kill:
nothing in the cache is partial (every object matches its digest name, every record names only
intact objects, temporary files exist only under cache/tmp); a plain rerun exits 0, keeps
every stage the killed run had finished (cached, not rebuilt), and gives the same keys and
output digests for the deterministic stages, the same served engine and the same assertion
verdicts as an uninterrupted build.

TRTMAKE_KILL_SEED=N replays a run's random delays (the seed is printed).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fault_helpers import (ROOT, assert_same_outcome, audit_objects, audit_records, cli_env, outcome, records,
                           run, served_files_are_objects, start, stray_temp_files)

pytestmark = pytest.mark.faults

RANDOM_TRIALS = 30
LANES = 2  # trials run two at a time (each on its own cache); the kill delays are measured that way too


def _targets(tiny_model: Path) -> dict[str, tuple[str, ...]]:
    targets = {
        "fp16": ("target=tiny_cnn_fp16",),
        # a user's model file with external weights: the stat cache is written (stat:partial)
        "fp32-file": ("target=tiny_cnn_fp32", f"model.path={tiny_model}", "model.generator=null"),
    }
    if (ROOT / "engine_recipes" / "target" / "tiny_cnn_int8.yaml").exists():
        # calibration included; minmax keeps a trial short (entropy histograms take seconds here)
        targets["int8"] = ("target=tiny_cnn_int8", "calibrator=minmax")
    return targets


def _stage_records_by_name(cache: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in records(cache).values():
        counts[rec.get("stage", "?")] = counts.get(rec.get("stage", "?"), 0) + 1
    return counts


class Trial:
    def __init__(self, root: Path, name: str, args: tuple[str, ...], reference: dict):
        self.cache, self.report = root / name / "cache", root / name / "report.json"
        self.name, self.args, self.reference = name, args, reference

    def kill_after(self, delay: float) -> str:
        proc = start(self.cache, self.report, *self.args)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        return "killed" if proc.returncode == -signal.SIGKILL else f"finished ({proc.returncode})"

    def kill_at(self, point: str) -> str:
        proc = run(self.cache, self.report, *self.args, env=cli_env(TRTMAKE_FAULT=point))
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])
        return "killed"

    def check_and_rerun(self) -> dict:
        """The audit after a kill, the plain rerun, and its comparison with the reference."""
        audit_objects(self.cache)
        audit_records(self.cache)
        assert stray_temp_files(self.cache) == []
        done_before = {rec["key"] for rec in records(self.cache).values()}
        stages_done = sorted(rec["stage"] for rec in records(self.cache).values() if rec.get("stage") != "index")
        proc = run(self.cache, self.report, *self.args)
        assert proc.returncode == 0, (self.name, proc.stdout[-3000:], proc.stderr[-3000:])
        report = json.loads(self.report.read_text())
        for stage in report["targets"][0]["stages"]:  # nothing the killed run finished is built again
            if stage["key"] in done_before:
                assert stage["status"] == "cached", (self.name, stage)
        relaxed = assert_same_outcome(outcome(report, self.cache), self.reference, self.name)
        served_files_are_objects(report, self.cache)
        audit_objects(self.cache)
        audit_records(self.cache)
        assert stray_temp_files(self.cache) == []
        return {"stages_done_at_kill": stages_done, "warnings": report["targets"][0]["warnings"],
                "engine_same_up_to_node_names": relaxed}


def _reference(root: Path, name: str, args: tuple[str, ...]) -> tuple[dict, float, float]:
    """An uninterrupted build: its outcome, its wall time, and the seconds its stages took."""
    cache, report_path = root / f"ref-{name}" / "cache", root / f"ref-{name}" / "report.json"
    proc = run(cache, report_path, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_path.read_text())
    stage_seconds = sum(s["seconds"] for s in report["targets"][0]["stages"])
    return outcome(report, cache), proc.seconds, stage_seconds


def test_kill9_anywhere_then_plain_rerun_matches_an_uninterrupted_build(tmp_path, tiny_model):
    seed = int(os.environ.get("TRTMAKE_KILL_SEED") or random.SystemRandom().randrange(1 << 30))
    rng = random.Random(seed)
    print(f"\nTRTMAKE_KILL_SEED={seed}")
    targets = _targets(tiny_model)
    jobs = [(tmp_path, name, args) for name, args in targets.items()] + [(tmp_path / "again", "fp16", targets["fp16"])]
    with ThreadPoolExecutor(LANES) as pool:
        *built, again = pool.map(lambda job: _reference(*job), jobs)
    refs = dict(zip(targets, built))
    # the reference is reproducible: a second uninterrupted build gives the same outcome
    assert_same_outcome(again[0], refs["fp16"][0], "again")

    # random moments: half stratified over the whole run (imports, compose, every stage, the
    # report), half over the window where stages run (its last `stage seconds` + a margin)
    plans = []
    share = {"fp16": 13, "fp32-file": 12, "int8": 5}  # int8 runs calibration: ~3 s a build, so fewer trials
    if "int8" not in targets:
        share["fp16"] += share.pop("int8")
    for name, n in share.items():
        _, wall, stage_s = refs[name]
        for j in range(n):
            u = (j // 2 + rng.random()) / -(-n // 2)  # stratified: each half of the trials covers its span evenly
            if j % 2:
                delay = u * wall * 1.05
            else:
                start_s = max(0.0, wall - stage_s - 0.4)
                delay = start_s + u * (wall + 0.1 - start_s)
            plans.append((f"random-{len(plans):02d}-{name}", name, delay, None))
    assert len(plans) == RANDOM_TRIALS
    # named points: the publish protocol of each kind of write, deterministically
    points = ["source:published", "build:ran", "build:published", "build:record-partial", "validate:recorded",
              "pointer:partial"]
    plans += [(f"point-{p.replace(':', '-')}", "fp16", None, p) for p in points]
    plans.append(("point-stat-partial", "fp32-file", None, "stat:partial"))
    if "int8" in targets:
        plans.append(("point-calibrate-published", "int8", None, "calibrate:published"))

    def trial(plan) -> tuple[str, str, dict]:
        label, name, delay, point = plan
        t = Trial(tmp_path, label, targets[name], refs[name][0])
        how = t.kill_at(point) if point else t.kill_after(delay)
        return label, how, t.check_and_rerun()

    plans.sort(key=lambda plan: plan[1] != "int8")  # the longest trials first: the two lanes end together
    with ThreadPoolExecutor(LANES) as pool:
        results = list(pool.map(trial, plans))

    killed = [r for r in results if r[0].startswith("random") and r[1] == "killed"]
    mid_build = [r for r in killed if r[2]["stages_done_at_kill"]]
    summary = {"seed": seed, "trials": len(results), "random": RANDOM_TRIALS, "killed": len(killed),
               "killed_after_some_stage": len(mid_build),
               "by_stages_done": sorted({len(r[2]["stages_done_at_kill"]) for r in killed}),
               "points": len(results) - RANDOM_TRIALS,
               "engines_same_up_to_node_names": sum(r[2]["engine_same_up_to_node_names"] for r in results)}
    print(json.dumps(summary))
    (tmp_path / "kill_summary.json").write_text(json.dumps({"summary": summary, "trials": results}, indent=1))
    assert len(results) >= 30 and len(killed) >= RANDOM_TRIALS // 2, summary
