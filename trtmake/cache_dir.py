"""Where the cache lives: one rule for builds, plans, gc, clean and merge-timing-cache.

The last `cache.dir=` override, else TRTMAKE_CACHE, else `cache` (the schema's default,
`${oc.env:TRTMAKE_CACHE,cache}`); `~` expanded, relative to the project root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from trtmake.errors import UserError

DEFAULT = "cache"
ENV = "TRTMAKE_CACHE"


def resolve_cache_dir(root: Path, overrides: Iterable[str] = (), interpolate: bool = True) -> Path:
    """The cache folder for these command-line overrides. A value holding `${...}` is resolved
    by OmegaConf (UserError when it cannot be); with `interpolate=False` (looking up a plan
    before composing, which must stay light and never fail) it is the default `cache`."""
    value = os.environ.get(ENV) or DEFAULT
    for o in overrides:
        if o.startswith("cache.dir="):
            value = o.split("=", 1)[1]
    if "${" in value:
        value = _interpolated(value) if interpolate else DEFAULT
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(root) / path


def _interpolated(value: str) -> str:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return str(OmegaConf.to_container(OmegaConf.create({"dir": value}), resolve=True)["dir"])
    except OmegaConfBaseException as exc:
        raise UserError(f"cache.dir: cannot resolve {value!r} ({exc}); pass cache.dir=PATH") from None
