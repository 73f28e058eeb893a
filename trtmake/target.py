"""The Target: a composed config, resolved and frozen into plain, serializable data.

After this point nothing reads Hydra or OmegaConf: the executor only executes (ninja's
"generator decides, executor runs").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtmake.assertions import declared
from trtmake.cache_dir import resolve_cache_dir
from trtmake.config.checks import check_values
from trtmake.errors import UserError
from trtmake.models import GENERATOR_VERSION
from trtmake.profiles import config_profiles, resolve_profiles
from trtmake.project import target_id, target_names
from trtmake.shape_sweep import grid

@dataclass(frozen=True)
class Target:
    name: str
    overrides: tuple[str, ...]
    project_root: Path
    cfg: dict[str, Any]

    @property
    def label(self) -> str:
        extra = [o for o in self.overrides if not o.startswith("target=")]
        return f"{self.name} [{' '.join(extra)}]" if extra else self.name

    @property
    def target_id(self) -> str:
        """Names the target's pointer file (its last run, whatever the overrides: what explain diffs)."""
        return target_id(self.name)

    def __getitem__(self, group: str) -> Any:
        return self.cfg[group]

    def path(self, value: str) -> Path:
        """Config paths are relative to the project root (the folder holding conf/)."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.project_root / p

    def path_hint(self, message: str) -> str:
        """`message` (a user error) with a note when it names a relative config path resolved from
        the project root while trtmake runs in another folder: the user meant the current one."""
        cwd = Path.cwd()
        if cwd == self.project_root:
            return message
        for value in _strings(self.cfg):
            if not value or os.path.isabs(value) or "/" not in value and "." not in value:
                continue
            if str(self.project_root / value) in message:
                here = cwd / value
                fix = f"pass {here}" if here.exists() else "pass an absolute path"
                return (f"{message} (relative paths resolve from the project root {self.project_root}, "
                        f"not the current folder; {fix})")
        return message

    @property
    def cache_dir(self) -> Path:
        return resolve_cache_dir(self.project_root, [f"cache.dir={self.cfg['cache']['dir']}"])


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def freeze(cfg: Any, project_root: Path) -> tuple[str, dict[str, Any]]:
    """A composed config, resolved, checked and made plain: (the target's name, its cfg).
    trtmake.planner makes the Target of it."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if "hydra" in cfg:
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or "config"
        msg = str(exc).splitlines()[0]
        raise UserError(f"{key}: {msg}") from None
    plain.pop("hydra", None)
    _check_model(plain["model"])
    name = _target_name(plain, project_root)
    resolve_profiles(plain["profile"])  # what every reader of the profile sees
    _spread_int_range(plain["dataset"])
    _check_static(plain)
    return name, plain


def _target_name(plain: dict[str, Any], project_root: Path) -> str:
    """The target recipe's name; with no target, a user's own file names it (and its model)."""
    model = plain["model"]
    if model.get("path") and model.get("name") in GENERATOR_VERSION:  # a generator recipe pointed at a user's file
        model["name"] = None
    if not model.get("name"):
        model["name"] = Path(model["path"]).stem if model.get("path") else (model.get("generator") or "model")
    name = plain["target"]["name"]
    if name:
        return name
    if not model.get("path"):
        raise UserError(f"target: none given; pass target=NAME ({', '.join(target_names(project_root))}) "
                        "or model=onnx model.path=FILE for your own file")
    plain["target"]["name"] = model["name"]
    return model["name"]


def _spread_int_range(dataset: dict[str, Any]) -> None:
    """dataset.int_range is the default of each split's own int_range (what the data readers see)."""
    shared = dataset.pop("int_range", None)
    for key, given in [("dataset.int_range", shared)] + [(f"dataset.{k}.int_range", (dataset.get(k) or {}).get("int_range"))
                                                          for k in ("calibration", "validation", "selection")]:
        if given is not None and (len(given) != 2 or int(given[1]) - int(given[0]) < 2):
            raise UserError(f"{key}: {list(given)} must be [low, high) with at least two values, "
                            "e.g. [0, 30522] for token ids")
    for split in ("calibration", "validation", "selection"):
        src = dataset.get(split)
        if shared is not None and src is not None and src.get("int_range") is None:
            src["int_range"] = list(shared)


def _check_model(model: dict[str, Any]) -> None:
    given = [k for k in ("path", "generator", "export") if model.get(k)]
    if not given and "path" in model:
        raise UserError("model.path: not set; point it at your .onnx file: model=onnx model.path=FILE")
    if len(given) != 1:
        raise UserError(f"model: set exactly one of model.path, model.generator, model.export (got {given or 'none'})")


def _check_static(cfg: dict[str, Any]) -> None:
    """What can be checked without reading any file: value ranges, assertions, profile syntax."""
    check_values(cfg)
    profiles = config_profiles(cfg["profile"])
    declared(cfg["validation"], tuple(p.name for p in profiles) if len(profiles) > 1 else ())
    grid(profiles, cfg["validation"].get("sweep"))  # against the declared ranges; again once the model is read
