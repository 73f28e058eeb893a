"""The `backend.tensorrt` config slice, checked: one typed value per key, UserError otherwise.

Pure Python (no TensorRT import), shared by the builder, the runner and the trtexec export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trtmake.errors import UserError

KEY = "backend.tensorrt"
HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")
TILING_LEVELS = ("none", "fast", "moderate", "full")  # trtexec's 0..3
MAX_OPT_LEVEL = 5


@dataclass(frozen=True)
class TrtOptions:
    workspace_mb: int | None = None
    builder_optimization_level: int = 3
    hardware_compatibility_level: str = "none"
    version_compatible: bool = False
    tiling_optimization_level: str = "none"
    max_aux_streams: int | None = None
    device: int = 0


def parse_options(options: dict[str, Any] | None) -> TrtOptions:
    """Read the keys this backend uses; keys it does not read (timing_cache, ...) are ignored."""
    raw = dict(options or {})
    return TrtOptions(
        workspace_mb=_int(raw, "workspace_mb", None, low=1),
        builder_optimization_level=_int(raw, "builder_optimization_level", 3, low=0, high=MAX_OPT_LEVEL),
        hardware_compatibility_level=_choice(raw, "hardware_compatibility_level", HARDWARE_LEVELS),
        version_compatible=_bool(raw, "version_compatible"),
        tiling_optimization_level=_choice(raw, "tiling_optimization_level", TILING_LEVELS),
        max_aux_streams=_int(raw, "max_aux_streams", None, low=0),
        device=_int(raw, "device", 0, low=0),
    )


def _int(raw: dict, key: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        if default is None:
            return None
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{KEY}.{key}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise UserError(f"{KEY}.{key}: {value} is out of range; allowed {bounds}")
    return value


def _choice(raw: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(key, allowed[0])
    value = getattr(value, "value", value)  # str Enums from structured configs
    if value not in allowed:
        raise UserError(f"{KEY}.{key}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _bool(raw: dict, key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise UserError(f"{KEY}.{key}: expected true or false, got {value!r}")
    return value
