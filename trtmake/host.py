"""This machine, named for people (reports): the CPU's model name, as /proc/cpuinfo gives it."""

from __future__ import annotations

import os
import platform
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """`AMD EPYC 7B13 (x86_64, 2 cores)`: the model name from /proc/cpuinfo (Linux), else what
    platform knows, with the architecture and the cores this process may use."""
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")) and ":" in line:
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    name = name or platform.processor() or "unknown CPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    return f"{name} ({platform.machine() or '?'}, {cores} core{'s' if cores != 1 else ''})"
