"""argv -> Target(s): the one place a Target is made, from a cached plan or a Hydra composition.

Every command goes through here: a single build or explain (`cached`, `run_hydra`,
`store_single`), each job of a multirun (app.Job, and the sweeper's sweep.Plans through
`planned` and `from_config`), and `status` (`Planner`). A cached plan (trtmake/plan_cache.py)
stands in for Hydra while no file composition could read changed.

A `Request` is what the CLI asks of every job, wherever it runs: it travels pickled with the
Hydra task function (app.Job) to the launcher's processes and hosts.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from trtmake import plan_cache
from trtmake.errors import TrtmakeError
from trtmake.executor import TargetResult
from trtmake.heavy import lazy_import
from trtmake.target import Target, freeze

schema = lazy_import("trtmake.config.schema")

# Overrides that change where results go or how they are shown, not what is built.
NEUTRAL = ("report.", "cache.", "hydra.", "show=", "revalidate=", "target=")
_STUB_CFG = {"model": {"name": "?", "synthetic_weights": False}, "precision": {"mode": "?"}}


@dataclass(frozen=True)
class Request:
    """A build or explain as the CLI asked for it."""

    command: str  # build | explain
    project_root: Path
    progress: bool  # show the progress display (the CLI's stderr is a terminal)
    cli_pid: int  # the CLI's process: the only one that draws progress and offers plans

    @property
    def explain(self) -> bool:
        return self.command == "explain"

    def in_cli_process(self) -> bool:
        return os.getpid() == self.cli_pid


def make_target(name: str, cfg: dict[str, Any], overrides: Sequence[str], root: Path) -> Target:
    """A Target labelled by the overrides that change what is built (the NEUTRAL ones dropped)."""
    kept = tuple(o for o in overrides if not o.lstrip("+~").startswith(NEUTRAL))
    return Target(name=name, overrides=kept, project_root=root, cfg=cfg)


def from_config(cfg: Any, overrides: Sequence[str], root: Path) -> Target:
    """A composed Hydra config, resolved and frozen (target.freeze)."""
    return make_target(*freeze(cfg, root), overrides, root)


def stub(overrides: Sequence[str], root: Path) -> Target:
    """The target of a job that never reached the executor: named by its `target=` override."""
    name = next((o.split("=", 1)[1] for o in overrides if o.startswith("target=")), "?")
    return make_target(name, _STUB_CFG, overrides, root)


def failed_result(overrides: Sequence[str], root: Path, exc: BaseException) -> TargetResult:
    """A result for a job that never reached the executor (bad config, crash around it). An
    internal error keeps its traceback for the report (call it in the `except` block)."""
    if isinstance(exc, TrtmakeError):
        return TargetResult(stub(overrides, root), error=str(exc), exit_code=exc.exit_code)
    result = TargetResult(stub(overrides, root), error=f"internal error: {type(exc).__name__}: {exc}", exit_code=1)
    result.data["traceback"] = {"text": traceback.format_exc()}
    return result


# -- cached plans -------------------------------------------------------------------------------
def planned(root: Path, argv: list[str], snap: dict[str, Any] | None) -> Target | None:
    """The Target of argv's stored plan, if it is still valid against `snap`."""
    plan = plan_cache.load(root, argv, snap) if snap is not None else None
    return None if plan is None else make_target(plan["name"], plan["cfg"], argv, root)


def cached(root: Path, argv: list[str]) -> tuple[Target | None, dict[str, Any] | None]:
    """A single run: (its Target from a valid plan, the snapshot a composed run's plan is stored
    against). Only plain overrides are planned: a flag (-m, --cfg, ...) gives (None, None)."""
    if any(a.startswith("-") for a in argv):
        return None, None
    snap = plan_cache.snapshot(root)
    return planned(root, argv, snap), snap


def store_single(root: Path, argv: list[str], snap: dict[str, Any] | None, offered: list[tuple]) -> None:
    """Store the plan a single run's job offered (app.Job.plans: (overrides, target, env_set))."""
    if snap is None or len(offered) != 1 or offered[0][0] != argv:
        return
    _, target, env_set = offered[0]
    plan_cache.store(root, argv, snap, target, env_set)


# -- composing ----------------------------------------------------------------------------------
def run_hydra(task: Callable[[Any], Any], flags: list[str], overrides: list[str], root: Path,
              snap: dict[str, Any] | None) -> int:
    """Run `task` (app.Job) through @hydra.main over the project's conf/; Hydra composes each job
    and calls it. `snap`: the single run's snapshot (planner.cached), read for whether hydra.mode
    could be set. Returns the exit code of a SystemExit (--help, --cfg); Hydra's own errors
    propagate (cli.py maps them)."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach the CLI, which prints one line
    import hydra

    schema.register()
    entry = hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name="config")(task)
    saved = sys.argv
    sys.argv = ["trtmake", *flags, *overrides]
    try:
        with _mode_probe(snap is None or plan_cache.sets_hydra_mode(snap, overrides)):
            entry()
    except SystemExit as exc:  # --help, --cfg and friends exit through here
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        sys.argv = saved
    return 0


@contextmanager
def _mode_probe(keep: bool):
    """@hydra.main composes a single run twice: once only to read `hydra.mode` (Hydra.get_mode,
    ~40% of a composing run), once for the job. With no -m flag and no config or override that
    sets hydra.mode, that probe returns None anyway, which is what it is replaced by here."""
    from hydra._internal.hydra import Hydra

    original = getattr(Hydra, "get_mode", None)
    if keep or original is None:
        yield
        return
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = original


def composer(root: Path, scope: ExitStack) -> Callable[[list[str], dict[str, Any] | None], Target]:
    """Initialise Hydra (once, for `scope`) and return argv -> Target, which also stores the
    target's plan against `snap`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    schema.register()
    scope.enter_context(initialize_config_dir(config_dir=str(root / "conf"), version_base="1.3",
                                              job_name="trtmake_status"))

    def composed(argv: list[str], snap: dict[str, Any] | None) -> Target:
        cfg = compose(config_name="config", overrides=argv, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        target = from_config(cfg, argv, root)
        if snap is not None:
            plan_cache.store(root, argv, snap, target, cfg.hydra.job.env_set)
        return target

    return composed


class Planner:
    """argv -> Target for many targets (status): the cached plan where one is valid, else a
    composition; Hydra is initialised once, and only when some target must be composed."""

    def __init__(self, root: Path, scope: ExitStack):
        self.root = root
        self.snap = plan_cache.snapshot(root) if plan_cache.enabled() else None
        self._scope = scope
        self._compose: Callable | None = None

    def target(self, argv: list[str]) -> Target:
        target = planned(self.root, argv, self.snap)
        if target is None:
            self._compose = self._compose or composer(self.root, self._scope)
            target = self._compose(argv, self.snap)
        return target
