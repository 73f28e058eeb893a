"""Multirun aggregation: every job of a sweep ends up as one entry of one report.

Jobs may run in this process (Hydra's basic launcher) or in others (joblib, submitit, Ray),
so the sweep dir is the meeting point, not memory:

    <sweep dir>/trtmake_sweep.json           written by the trtmake sweeper (hydra_plugins/
                                             trtmake_sweeper): every job in sweep order, the
                                             entries of jobs whose config did not compose, and
                                             launcher errors
    <sweep dir>/<job subdir>/trtmake_result.json   written by each job (app.Job): its report
                                             entry (report.target_entry) plus {"job": ...}

The sweeper reads them back with `collect` once every job was launched, in the launching
process, and leaves the entries on the task function (app.Job.sweep) for cli.py, which writes
the report and decides the exit code.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from trtmake import app, plan_cache, planner
from trtmake.app import ENTRY_FILE
from trtmake.atomic import write_text_atomic
from trtmake.config.errors import to_user_error
from trtmake.errors import BuildFailed, TrtmakeError
from trtmake.executor import run_target
from trtmake.planner import Request
from trtmake.report import target_entry

MANIFEST_FILE = "trtmake_sweep.json"


# -- written by the sweeper -------------------------------------------------------------------
class Manifest:
    """What the sweeper knows: every job in order, and how far each got before launching."""

    def __init__(self, sweep_dir: Path):
        self.path = Path(sweep_dir) / MANIFEST_FILE
        self.jobs: list[dict[str, Any]] = []

    def invalid(self, overrides: Sequence[str], exc: BaseException, root: Path) -> None:
        error = exc if isinstance(exc, TrtmakeError) else to_user_error(exc)
        self.done_here(overrides, _failed_entry(overrides, None, error, root))  # never launched

    def done_here(self, overrides: Sequence[str], entry: dict[str, Any]) -> None:
        """A job that was not launched (its config did not compose, or Plans.up_to_date_entry ran
        it here): its entry as it stands."""
        self.jobs.append({"overrides": list(overrides), "num": None, "entry": entry})

    def launched(self, overrides: Sequence[str], num: int) -> None:
        self.jobs.append({"overrides": list(overrides), "num": num, "entry": None})

    def launch_failed(self, nums: Sequence[int], exc: BaseException) -> None:
        for job in self.jobs:
            if job["num"] in nums:
                job["launch_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]

    def save(self) -> None:
        write_text_atomic(self.path, json.dumps({"format": 1, "jobs": self.jobs}, indent=1, default=str))


class Plans:
    """A sweep and the plan cache (trtmake/plan_cache.py), in the launching process.

    Hydra composes every job of a sweep twice (the sweeper's check, then the launcher), ~43 ms
    each. A job whose composed plan is cached and whose every stage is up to date need not be
    launched at all: `up_to_date_entry` runs it here through its plan (the cached run or the
    explain a launched job would do) and returns its report entry. Only for launchers that run
    jobs on this machine (basic, joblib, submitit's local one): elsewhere the up-to-date check
    would read this machine's toolchain (its CPU, its GPU or none), not the job's. Never when the
    sweep sets `hydra.job.env_set` (only Hydra applies those around a job). `store` keeps the
    plan of a job the sweeper composed, against the snapshot taken before composing anything."""

    LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher", "LocalLauncher")

    def __init__(self, config: Any, launcher: Any, request: Request):
        self.root = request.project_root
        self.request = replace(request, progress=False)
        usable = plan_cache.enabled() and not config.hydra.job.env_set
        self.snap = plan_cache.snapshot(self.root) if usable else None
        self.local = type(launcher).__name__ in self.LOCAL_LAUNCHERS

    def up_to_date_entry(self, overrides: Sequence[str]) -> dict[str, Any] | None:
        if self.snap is None or not self.local:
            return None
        target = planner.planned(self.root, list(overrides), self.snap)
        if target is None or target.cfg.get("show"):
            return None
        try:
            if not self.request.explain:
                probe = run_target(target, explain=True)
                if probe.error or probe.first_stale is not None:
                    return None  # something to build: the launcher runs it where jobs run
            result = app.execute(target, self.request)
        except Exception:  # launched instead: the job reports whatever this was, as any job does
            return None
        entry = target_entry(result)
        entry["job"] = {"num": None, "overrides": list(overrides), "dir": None, "pid": os.getpid(),
                        "in_process": True, "from_plan": True}
        return entry

    def store(self, overrides: Sequence[str], cfg: Any) -> None:
        if self.snap is None:
            return
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(cfg)  # ${hydra:...} resolves to this job, not the last one launched
        try:
            target = planner.from_config(cfg, list(overrides), self.root)
        except Exception:  # a plan is an optimisation: the launched job reports what is wrong
            return
        plan_cache.store(self.root, list(overrides), self.snap, target, cfg.hydra.job.env_set)


# -- read back in the launching process ---------------------------------------------------------
def collect(sweep_dir: Path, root: Path) -> list[dict[str, Any]]:
    """Every job's entry, in sweep order. A launched job that left no entry is a failed entry."""
    sweep_dir = Path(sweep_dir)
    by_num: dict[int, dict[str, Any]] = {}
    for path in sorted(sweep_dir.rglob(ENTRY_FILE)):
        try:
            entry = json.loads(path.read_text())
            by_num[int(entry["job"]["num"])] = entry
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a job killed while writing: reported below as missing
    try:
        manifest = json.loads((sweep_dir / MANIFEST_FILE).read_text())["jobs"]
    except (OSError, ValueError, KeyError, TypeError):
        return [e for _, e in sorted(by_num.items()) if not e.get("skip")]  # another sweeper
    entries = []
    for job in manifest:
        if job["entry"] is not None:
            entries.append(job["entry"])
        elif job["num"] in by_num:
            entry = by_num[job["num"]]
            if not entry.get("skip"):
                entries.append(entry)
        else:
            why = job.get("launch_error") or "the job ended without writing a result (killed or crashed?)"
            failed = BuildFailed(f"job {job['num']}: {why}; see {sweep_dir}")
            entries.append(_failed_entry(job["overrides"], job["num"], failed, root))
    return entries


def _failed_entry(overrides: Sequence[str], num: int | None, exc: BaseException, root: Path) -> dict[str, Any]:
    """The entry of a job that failed before it could write one (num None: never launched)."""
    entry = target_entry(planner.failed_result(list(overrides), root, exc))
    entry["job"] = {"num": num, "overrides": list(overrides), "dir": None, "pid": None}
    return entry
