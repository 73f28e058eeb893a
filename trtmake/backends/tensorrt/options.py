"""The `backend.tensorrt` config slice as one typed, frozen value with its defaults.

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

    # not in the build's key config: the GPU is in the fingerprint, the timing cache in its inputs
    NOT_KEYED = ("device", "timing_cache", "max_builds_per_gpu")


def parse_options(options: dict[str, Any] | None) -> TrtOptions:
    """An unset key (absent or None) takes its default. The schema types each key and
    trtmake/config/checks.py bounds the numbers when the target is planned; the choices are
    checked here."""
    given = {k: getattr(v, "value", v) for k, v in (options or {}).items() if v is not None}  # str Enums
    opts = TrtOptions(**{k: given[k] for k in TrtOptions.__dataclass_fields__ if k in given})
    for key, allowed in (("hardware_compatibility_level", HARDWARE_LEVELS), ("tiling_optimization_level", TILING_LEVELS)):
        if getattr(opts, key) not in allowed:
            raise UserError(f"{KEY}.{key}: {getattr(opts, key)!r} is not one of {', '.join(allowed)}")
    return opts
