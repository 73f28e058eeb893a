"""This machine's CPU, as /proc/cpuinfo describes it: its model name for people (reports) and its
feature flags for keys (kernels onnxruntime picks)."""

from __future__ import annotations

import os
import platform
from functools import lru_cache


@lru_cache(maxsize=4)
def cpuinfo_field(*prefixes: str) -> str | None:
    """The value of the first /proc/cpuinfo line starting with one of `prefixes` ("" when the
    line is there but empty), or None where there is no such line or no /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(prefixes) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """`AMD EPYC 7B13 (x86_64, 2 cores)`: the model name from /proc/cpuinfo (Linux), else what
    platform knows, with the architecture and the cores this process may use."""
    name = cpuinfo_field("model name", "Model", "Hardware") or platform.processor() or "unknown CPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    return f"{name} ({platform.machine() or '?'}, {cores} core{'s' if cores != 1 else ''})"
