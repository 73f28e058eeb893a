"""`trtmake status [--json] [target=NAME|PATTERN[,...]] [key=value ...]`: every target under
engine_recipes/target/, up to date or stale, and the first changed key component. Builds
nothing: each target goes through the same up-to-date check as `explain`
(executor.run_target(..., explain=True)). Targets come from trtmake.planner.Planner: a target
whose plan is cached is not composed; Hydra is initialised once, and only if some target must be.

Status is data first (a list of rows), printed as a table or as JSON (`--json`).
"""

from __future__ import annotations

import fnmatch
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from trtmake import report
from trtmake.config.errors import to_user_error
from trtmake.errors import TrtmakeError, UserError
from trtmake.executor import run_target
from trtmake.planner import Planner
from trtmake.project import target_names

USAGE = "usage: trtmake status [--json] [target=NAME|PATTERN[,...]] [key=value ...]"


def main(argv: list[str], root: Path, console) -> int:
    flags = [a for a in argv if a.startswith("-")]
    if {"-h", "--help"} & set(flags):
        console.print(USAGE, markup=False, highlight=False)
        return 0
    if set(flags) - {"--json"}:
        raise UserError(f"status: unknown option {sorted(set(flags) - {'--json'})[0]}; {USAGE}")
    overrides = [a for a in argv if not a.startswith("-")]
    patterns = [o.split("=", 1)[1] for o in overrides if o.startswith("target=")]
    overrides = [o for o in overrides if not o.startswith("target=")]
    names = select_targets(root, patterns)
    started = time.perf_counter()
    rows = status_rows(root, names, overrides)
    report.print_status(rows, console, seconds=time.perf_counter() - started, as_json="--json" in flags)
    return 2 if any(r["state"] == "error" and r.get("exit_code") == 2 for r in rows) else 0


def select_targets(root: Path, patterns: list[str]) -> list[str]:
    names = target_names(root)
    if not patterns:
        return names
    wanted = [p.strip() for pat in patterns for p in pat.removeprefix("glob(").removesuffix(")").split(",")]
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, w) for w in wanted)]
    if not chosen:
        raise UserError(f"target={','.join(wanted)}: matches no recipe in engine_recipes/target/; "
                        f"available: {', '.join(names)}")
    return chosen


def status_rows(root: Path, names: list[str], overrides: list[str]) -> list[dict[str, Any]]:
    """One row per target; a broken recipe is a row, not the end of the listing."""
    rows = []
    with ExitStack() as hydra_scope:
        plans = Planner(root, hydra_scope)
        for name in names:
            started = time.perf_counter()
            try:
                row = _row(plans.target([f"target={name}", *overrides]), name)
            except Exception as exc:
                err = exc if isinstance(exc, TrtmakeError) else to_user_error(exc)
                row = {"target": name, "state": "error", "passing": None, "stage": None, "why": str(err),
                       "exit_code": err.exit_code}
            row["seconds"] = round(time.perf_counter() - started, 4)
            rows.append(row)
    return rows


def _row(target: Any, name: str) -> dict[str, Any]:
    result = run_target(target, explain=True)
    if result.error:
        return {"target": name, "state": "error", "passing": None, "stage": None, "why": result.error,
                "exit_code": result.exit_code}
    stale = result.first_stale
    if stale is None:
        failed = [a for a in result.assertions if not a["passed"]]
        why = "; ".join(f"{a['metric']} {a['op']} {a['value']} failed (actual {a['actual']})" for a in failed)
        return {"target": name, "state": "up to date", "passing": not failed, "stage": None, "why": why,
                "exit_code": 1 if failed else 0}
    why = stale.reasons[0] if stale.reasons else stale.status
    if len(stale.reasons) > 1:
        why += f" (+{len(stale.reasons) - 1} more)"
    # the verdict of a stale target's last run is not known without running it
    return {"target": name, "state": "stale", "passing": None, "stage": stale.name, "why": why, "exit_code": 0}
