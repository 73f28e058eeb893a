"""The Hydra task function: composed config -> Target -> executor. Results are collected
here and reported by the entry point after Hydra returns (Hydra turns exceptions raised in
callbacks into warnings, so exit codes are decided in cli.py, not here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trtmake.executor import TargetResult

RESULTS: list[TargetResult] = []
MODE = {"explain": False, "progress": True}


def task(cfg: Any) -> TargetResult:
    from hydra.core.hydra_config import HydraConfig

    from trtmake.errors import TrtmakeError
    from trtmake.executor import run_target
    from trtmake.target import from_config

    root = Path(os.environ["TRTMAKE_PROJECT_ROOT"])
    overrides = list(HydraConfig.get().overrides.task)
    try:
        target = from_config(cfg, overrides, root)
    except TrtmakeError as exc:
        result = _failed_result(cfg, overrides, root, exc)
        RESULTS.append(result)
        return result
    if target.cfg.get("show"):
        from trtmake.show import show

        show(target, target.cfg["show"])
        return TargetResult(target)
    if MODE["progress"] and not MODE["explain"]:
        from trtmake.progress import RichProgress

        with RichProgress() as events:
            result = run_target(target, events)
    else:
        result = run_target(target, explain=MODE["explain"])
    RESULTS.append(result)
    return result


def _failed_result(cfg: Any, overrides: list[str], root: Path, exc: Exception) -> TargetResult:
    from trtmake.target import Target

    name = next((o.split("=", 1)[1] for o in overrides if o.startswith("target=")), "?")
    stub = Target(name=name, overrides=tuple(overrides), project_root=root,
                  cfg={"model": {"name": "?", "synthetic_weights": False}, "precision": {"mode": "?"}})
    return TargetResult(stub, error=str(exc), exit_code=getattr(exc, "exit_code", 2))
