"""The `backend.tensorrt` config slice, checked: one typed value per key, UserError otherwise.

The defaults live here (the schema leaves these keys unset, None). Parsed once per target
(`TensorRTBackend.parse_options`); the builder, the runner and the command lines read the result.
Pure Python (no TensorRT import).
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
    workspace_mb: int | None = None  # None: TensorRT's default
    builder_optimization_level: int = 3
    hardware_compatibility_level: str = "none"
    version_compatible: bool = False
    tiling_optimization_level: str = "none"
    max_aux_streams: int | None = None  # None: TensorRT's default
    device: int = 0
    timing_cache: str | None = None  # a pinned timing cache file (an input of the build's key)
    max_builds_per_gpu: int = 1

    # what an engine does not depend on: the GPU is in the fingerprint, the timing cache's bytes in
    # the key's inputs, the build slots in nothing
    NOT_KEYED = ("device", "timing_cache", "max_builds_per_gpu")


def parse_options(options: dict[str, Any] | None) -> TrtOptions:
    """Check each key; an unset one (absent or None) takes its default."""
    raw = {k: v for k, v in (options or {}).items() if v is not None}
    d = TrtOptions()
    timing_cache = raw.get("timing_cache")
    if timing_cache is not None and not isinstance(timing_cache, str):
        raise UserError(f"{KEY}.timing_cache: expected a file path, got {timing_cache!r}")
    return TrtOptions(
        workspace_mb=_int(raw, "workspace_mb", d.workspace_mb, low=1),
        builder_optimization_level=_int(raw, "builder_optimization_level", d.builder_optimization_level,
                                        low=0, high=MAX_OPT_LEVEL),
        hardware_compatibility_level=_choice(raw, "hardware_compatibility_level", HARDWARE_LEVELS),
        version_compatible=_bool(raw, "version_compatible", d.version_compatible),
        tiling_optimization_level=_choice(raw, "tiling_optimization_level", TILING_LEVELS),
        max_aux_streams=_int(raw, "max_aux_streams", d.max_aux_streams, low=0),
        device=_int(raw, "device", d.device, low=0),
        timing_cache=timing_cache,
        max_builds_per_gpu=_int(raw, "max_builds_per_gpu", d.max_builds_per_gpu, low=1),
    )


def _int(raw: dict, key: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
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


def _bool(raw: dict, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise UserError(f"{KEY}.{key}: expected true or false, got {value!r}")
    return value
