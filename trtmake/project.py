"""The project root: the folder holding conf/config.yaml and engine_recipes/ (like make's Makefile)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from trtmake.errors import UserError


def find_project_root(start: Path | None = None) -> Path:
    env = os.environ.get("TRTMAKE_PROJECT")
    if env:
        root = Path(env).resolve()
        if not _is_root(root):
            raise UserError(f"TRTMAKE_PROJECT={env}: no conf/config.yaml and engine_recipes/ there")
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_root(folder):
            return folder
    raise UserError(f"no trtmake project in {here} or its parents (a folder holding conf/config.yaml "
                    "and engine_recipes/); cd into one or set TRTMAKE_PROJECT")


def target_names(root: Path) -> list[str]:
    """The project's targets: the recipes in engine_recipes/target/, sorted."""
    return sorted(p.stem for p in (root / "engine_recipes" / "target").glob("*.yaml"))


def target_id(name: str) -> str:
    """The target's name made safe as a file name: it names the pointer to its last run."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _is_root(folder: Path) -> bool:
    return (folder / "conf" / "config.yaml").is_file() and (folder / "engine_recipes").is_dir()
