"""The Hydra task function: a composed config -> Target (trtmake.planner) -> executor.

`Job(request)` is the task function, an object rather than a function so that the CLI's
Request travels with it: launchers (joblib, submitit, Ray) pickle the task function to the
processes and hosts that run jobs. Jobs run in the CLI's process leave their results on the Job
(`results`, and `plans`, a single run's candidate plan); the trtmake sweeper leaves the sweep's
collected entries there (`sweep`). A multirun job may run elsewhere, so it also writes its
report entry into its Hydra output dir, where trtmake.sweep collects it. Exit codes are decided
in cli.py, never here (Hydra turns exceptions raised in callbacks into warnings).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trtmake import planner
from trtmake.atomic import write_text_atomic
from trtmake.executor import TargetResult, run_target
from trtmake.heavy import lazy_import
from trtmake.planner import Request
from trtmake.progress import RichProgress
from trtmake.report import target_entry

show = lazy_import("trtmake.commands.show")

ENTRY_FILE = "trtmake_result.json"


class Job:
    """The task function Hydra calls with each job's composed config."""

    def __init__(self, request: Request):
        self.request = request
        self.results: list[TargetResult] = []  # the jobs this process ran, in order
        self.plans: list[tuple] = []  # single runs in the CLI process: (overrides, target, env_set)
        self.sweep: dict[str, Any] | None = None  # set by the trtmake sweeper once a multirun ended

    def __getstate__(self) -> dict[str, Any]:
        return {"request": self.request}  # another process starts with nothing collected

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["request"])

    def __call__(self, cfg: Any) -> TargetResult:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        hc, root = HydraConfig.get(), self.request.project_root
        # unresolved: an override like `a=${a}` is the user's text, reported by from_config with its key
        overrides = [str(o) for o in OmegaConf.to_container(hc.overrides.task, resolve=False)]
        result = guarded(lambda: self._run(cfg, overrides, hc), overrides, root)
        write_job_entry(hc, {"skip": True} if result is None else target_entry(result), self.request)
        if result is None:  # show=...: printed, nothing built
            return TargetResult(planner.stub(overrides, root))
        self.results.append(result)
        return result

    def _run(self, cfg: Any, overrides: list[str], hc: Any) -> TargetResult | None:
        from hydra.types import RunMode

        target = planner.from_config(cfg, overrides, self.request.project_root)
        if hc.mode != RunMode.MULTIRUN and self.request.in_cli_process():
            self.plans.append((overrides, target, dict(hc.job.env_set or {})))
        return execute(target, self.request)


def guarded(run, overrides: list[str], root: Path) -> TargetResult | None:
    """`run()`, where a failure (a bad config, a crash around the executor) is a failed result:
    one job never takes a sweep down."""
    try:
        return run()
    except Exception as exc:
        return planner.failed_result(overrides, root, exc)


def execute(target: Any, request: Request) -> TargetResult | None:
    """Run (or explain, or show) a frozen Target: the same from a Hydra job or a cached plan.
    None: show=... printed the target, nothing was built."""
    if target.cfg.get("show"):
        show.show(target, target.cfg["show"])
        return None
    if request.progress and request.in_cli_process() and not request.explain:
        with RichProgress() as events:
            return run_target(target, events)
    return run_target(target, explain=request.explain)


def write_job_entry(hc: Any, entry: dict[str, Any], request: Request) -> None:
    """In a multirun job: store this job's report entry in its Hydra output dir (trtmake.sweep
    collects it in the launching process)."""
    from hydra.types import RunMode

    if hc.mode != RunMode.MULTIRUN:
        return
    out = Path(hc.runtime.output_dir)
    job = {"num": int(hc.job.num), "overrides": list(hc.overrides.task), "dir": str(out), "pid": os.getpid(),
           "in_process": request.in_cli_process()}  # False: another process ran it
    write_text_atomic(out / ENTRY_FILE, json.dumps({**entry, "job": job}, indent=1, default=str))
