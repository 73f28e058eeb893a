"""The Hydra task function: composed config -> Target -> executor.

Single runs append to RESULTS, which the entry point reports after Hydra returns. A multirun
job may run in another process (joblib, submitit), so it also writes its report entry into its
Hydra output dir, where trtmake.sweep collects it. Exit codes are decided in cli.py, never here
(Hydra turns exceptions raised in callbacks into warnings).

The CLI passes its mode through `hydra.job.env_set`, which Hydra applies around the task in
whichever process runs it: TRTMAKE_COMMAND (build|explain), TRTMAKE_PROGRESS (1: show the
progress display, only in the CLI's own process, TRTMAKE_CLI_PID).
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

from trtmake.executor import TargetResult

RESULTS: list[TargetResult] = []


def task(cfg: Any) -> TargetResult:
    from hydra.core.hydra_config import HydraConfig

    from trtmake import sweep

    from omegaconf import OmegaConf

    root = Path(os.environ.get("TRTMAKE_PROJECT_ROOT") or _find_root())
    # unresolved: an override like `a=${a}` is the user's text, reported by from_config with its key
    overrides = [str(o) for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)]
    try:
        result = _run(cfg, overrides, root)
    except Exception as exc:  # never let one job take the sweep down: it becomes a failed entry
        result = failed_result(overrides, root, exc)
        result.data["traceback"] = {"text": traceback.format_exc()}
    if result is None:  # show=...: printed, nothing built
        sweep.write_job_entry({"skip": True})
        return TargetResult(_stub(overrides, root))
    RESULTS.append(result)
    from trtmake.report import target_entry

    sweep.write_job_entry(target_entry(result))
    return result


def _run(cfg: Any, overrides: list[str], root: Path) -> TargetResult | None:
    from trtmake.errors import TrtmakeError
    from trtmake.target import from_config

    try:
        target = from_config(cfg, overrides, root)
    except TrtmakeError as exc:
        return failed_result(overrides, root, exc)
    _offer_plan(overrides, target)
    explain = os.environ.get("TRTMAKE_COMMAND") == "explain"
    progress = os.environ.get("TRTMAKE_PROGRESS") == "1" and os.environ.get("TRTMAKE_CLI_PID") == str(os.getpid())
    return execute(target, explain, progress)


def execute(target: Any, explain: bool, progress: bool) -> TargetResult | None:
    """Run (or explain, or show) a frozen Target: the same from a Hydra job or a cached plan."""
    from trtmake.executor import run_target

    if target.cfg.get("show"):
        from trtmake.commands.show import show

        show(target, target.cfg["show"])
        return None
    if progress and not explain:
        from trtmake.progress import RichProgress

        with RichProgress() as events:
            return run_target(target, events)
    return run_target(target, explain=explain)


def _offer_plan(overrides: list[str], target: Any) -> None:
    """In the CLI's own process, a single run's composed target is a candidate plan (cli.py
    stores it once Hydra returned; trtmake/plan_cache.py)."""
    if os.environ.get("TRTMAKE_CLI_PID") != str(os.getpid()):
        return
    from hydra.core.hydra_config import HydraConfig

    from trtmake import plan_cache

    if plan_cache.enabled():
        plan_cache.PENDING.append({"overrides": overrides, "target": target,
                                   "job_env": dict(HydraConfig.get().job.env_set or {})})


def _find_root() -> Path:
    from trtmake.project import find_project_root

    return find_project_root()


def failed_result(overrides: list[str], root: Path, exc: BaseException) -> TargetResult:
    """A result for a job that never reached the executor (bad config, crash around it)."""
    from trtmake.errors import TrtmakeError

    if isinstance(exc, TrtmakeError):
        error, code = str(exc), exc.exit_code
    else:
        error, code = f"internal error: {type(exc).__name__}: {exc}", 1
    return TargetResult(_stub(overrides, root), error=error, exit_code=code)


def _stub(overrides: list[str], root: Path):
    from trtmake.target import _NEUTRAL, Target

    name = next((o.split("=", 1)[1] for o in overrides if o.startswith("target=")), "?")
    kept = tuple(o for o in overrides if not o.lstrip("+~").startswith(_NEUTRAL))
    return Target(name=name, overrides=kept, project_root=root,
                  cfg={"model": {"name": "?", "synthetic_weights": False}, "precision": {"mode": "?"}})
