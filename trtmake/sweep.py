"""Multirun aggregation: every job of a sweep ends up as one entry of one report.

Jobs may run in this process (Hydra's basic launcher) or in others (joblib, submitit, Ray),
so the sweep dir is the meeting point, not memory:

    <sweep dir>/trtmake_sweep.json           written by the trtmake sweeper (hydra_plugins/
                                             trtmake_sweeper): every job in sweep order, the
                                             entries of jobs whose config did not compose, and
                                             launcher errors
    <sweep dir>/<job subdir>/trtmake_result.json   written by each job (app.task): its report
                                             entry (report.target_entry) plus {"job": ...}

`SweepCollector` (a Hydra callback, registered in conf/config.yaml) reads them back in
`on_multirun_end`, in the launching process, and leaves the entries in `LAST` for cli.py,
which writes the report and decides the exit code. Hydra turns a callback's exception into
a warning, so the collector never decides anything: a missing `LAST` is itself a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from hydra.experimental.callback import Callback

from trtmake.atomic import write_text_atomic

ENTRY_FILE = "trtmake_result.json"
MANIFEST_FILE = "trtmake_sweep.json"

# Set by SweepCollector in the launching process; read by cli.py after Hydra returns.
STARTED: dict[str, Any] = {}
LAST: dict[str, Any] = {}


class SweepCollector(Callback):
    """Hydra callback: collects every job's entry from the sweep dir when the multirun ends."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        LAST.clear()
        STARTED.clear()
        STARTED.update(sweep_dir=str(config.hydra.sweep.dir),
                       report_path=OmegaConf.select(config, "report.path", default=None),
                       junit=OmegaConf.select(config, "report.junit", default=None))

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        LAST.update(sweep_dir=str(sweep_dir), entries=collect(sweep_dir))


# -- written by each job ---------------------------------------------------------------------
def write_job_entry(entry: dict[str, Any]) -> Path | None:
    """In a multirun job: store this job's report entry in its Hydra output dir."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    out = Path(hc.runtime.output_dir)
    job = {"num": int(hc.job.num), "overrides": list(hc.overrides.task), "dir": str(out), "pid": os.getpid(),
           "in_process": os.environ.get("TRTMAKE_CLI_PID") == str(os.getpid())}  # False: another process ran it
    path = out / ENTRY_FILE
    write_text_atomic(path, json.dumps({**entry, "job": job}, indent=1, default=str))
    return path


# -- written by the sweeper -------------------------------------------------------------------
class Manifest:
    """What the sweeper knows: every job in order, and how far each got before launching."""

    def __init__(self, sweep_dir: Path):
        self.path = Path(sweep_dir) / MANIFEST_FILE
        self.jobs: list[dict[str, Any]] = []

    def invalid(self, overrides: Sequence[str], exc: BaseException, root: Path) -> None:
        from trtmake.app import failed_result
        from trtmake.config.errors import to_user_error
        from trtmake.errors import TrtmakeError
        from trtmake.report import target_entry

        error = exc if isinstance(exc, TrtmakeError) else to_user_error(exc)
        entry = target_entry(failed_result(list(overrides), root, error))
        entry["job"] = {"num": None, "overrides": list(overrides), "dir": None, "pid": None}  # never launched
        self.done_here(overrides, entry)

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

    def __init__(self, config: Any, launcher: Any, root: Path):
        from trtmake import plan_cache

        env_set = config.hydra.job.env_set or {}
        self.root = root
        self.command = str(env_set.get("TRTMAKE_COMMAND", "build"))
        usable = plan_cache.enabled() and not plan_cache.user_env(env_set)
        self.snap = plan_cache.snapshot(root) if usable else None
        self.local = type(launcher).__name__ in self.LOCAL_LAUNCHERS

    def up_to_date_entry(self, overrides: Sequence[str]) -> dict[str, Any] | None:
        if self.snap is None or not self.local:
            return None
        from trtmake import app, plan_cache
        from trtmake.executor import run_target
        from trtmake.report import target_entry

        plan = plan_cache.load(self.root, list(overrides), self.snap)
        if plan is None:
            return None
        target = plan_cache.target_from_plan(plan, list(overrides), self.root)
        if target.cfg.get("show"):
            return None
        explain = self.command == "explain"
        try:
            if not explain:
                probe = run_target(target, explain=True)
                if probe.error or probe.first_stale is not None:
                    return None  # something to build: the launcher runs it where jobs run
            result = app.execute(target, explain, progress=False)
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

        from trtmake import plan_cache
        from trtmake.target import from_config

        HydraConfig.instance().set_config(cfg)  # ${hydra:...} resolves to this job, not the last one launched
        try:
            target = from_config(cfg, list(overrides), self.root)
        except Exception:  # a plan is an optimisation: the launched job reports what is wrong
            return
        plan_cache.store(self.root, list(overrides), self.snap, target, cfg.hydra.job.env_set)


# -- read back in the launching process ---------------------------------------------------------
def collect(sweep_dir: Path) -> list[dict[str, Any]]:
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
            entries.append(_missing_entry(job["overrides"], job["num"], why, sweep_dir))
    return entries


def _missing_entry(overrides: list[str], num: int, why: str, sweep_dir: Path) -> dict[str, Any]:
    from trtmake.app import failed_result
    from trtmake.errors import BuildFailed
    from trtmake.report import target_entry

    root = Path(os.environ.get("TRTMAKE_PROJECT_ROOT", "."))
    entry = target_entry(failed_result(overrides, root, BuildFailed(f"job {num}: {why}; see {sweep_dir}")))
    entry["job"] = {"num": num, "overrides": overrides, "dir": None, "pid": None}
    return entry
