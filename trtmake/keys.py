"""Stage keys: computed in one place, stored with the result so `explain` can diff them."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from trtmake.hashing import canonical_json, digest_json


@dataclass(frozen=True)
class StageKey:
    """What defines a stage's result: kind + implementation version, the resolved config
    slice it reads, the digests of its input artifacts, and the toolchain facts it depends on."""

    stage: str
    version: int
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    toolchain: dict[str, str] = field(default_factory=dict)

    def components(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def digest(self) -> str:
        return digest_json(self.components())


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay whole (compared as values)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def diff_components(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human lines, one per changed key component: `config.precision.mode: fp32 -> fp16`."""
    a, b = flatten(old), flatten(new)
    lines = []
    for name in sorted(set(a) | set(b)):
        if name in a and name in b and canonical_json(a[name]) == canonical_json(b[name]):
            continue
        lines.append(f"{name}: {_show(a.get(name, '(absent)'))} -> {_show(b.get(name, '(absent)'))}")
    return lines


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    if isinstance(value, str):
        return value
    return canonical_json(value)


def toolchain_versions(*packages: str) -> dict[str, str]:
    """The installed version of each distribution ("not installed" when absent), for a key's toolchain."""
    return {p: _version(p) for p in packages}


@functools.lru_cache(maxsize=None)
def _version(package: str) -> str:
    # read once per process: each lookup scans every folder of sys.path (~1 ms)
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def config_slice(cfg: dict[str, Any], params: tuple[str, ...]) -> dict[str, Any]:
    """The part of a target's config that a stage declares it reads (DVC's params): each dotted
    key (`precision.mode`) or group (`validation`) copied into a nested dict of the same shape."""
    out: dict[str, Any] = {}
    for dotted in params:
        *groups, last = dotted.split(".")
        src, dst = cfg, out
        for group in groups:
            src = src.get(group) or {}
            dst = dst.setdefault(group, {})
        dst[last] = src.get(last)
    return out
