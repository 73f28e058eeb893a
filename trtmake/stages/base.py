"""What every stage shares: the context it reads, what it returns, and its interface."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from trtmake.cache import Cache
from trtmake.keys import StageKey
from trtmake.target import Target


@dataclass(frozen=True)
class Artifact:
    """A file a stage produced or read, identified by its digest."""

    digest: str
    path: Path


@dataclass
class StageOutput:
    files: dict[str, Path] = field(default_factory=dict)  # published as cache objects
    data: dict[str, Any] = field(default_factory=dict)  # small JSON results, kept in the record


class Upstream(Exception):
    """The key cannot be computed yet: an upstream stage has not produced its artifact."""

    def __init__(self, stage: str):
        super().__init__(stage)
        self.stage = stage


@dataclass
class Context:
    target: Target
    cache: Cache
    backend: Any
    backend_reason: str
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # records to keep on success
    on_progress: Callable[[str, int, int], None] = lambda stage, done, total: None
    explain: bool = False  # explain mode: a missing upstream artifact is a placeholder, not an error

    def artifact(self, name: str) -> Artifact:
        if name not in self.artifacts:
            if self.explain:
                return Artifact(f"(rebuilt by {name.split('.')[0]})", self.target.project_root)
            raise Upstream(name)
        return self.artifacts[name]

    def stage_data(self, name: str) -> dict[str, Any]:
        if name not in self.data:
            raise Upstream(name)
        return self.data[name]

    def host(self) -> str:
        return socket.gethostname()


class Stage:
    """A pure function of its declared inputs. Subclasses define name, version, key, run."""

    name = "stage"
    version = 1

    def key(self, ctx: Context) -> StageKey:
        raise NotImplementedError

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        raise NotImplementedError

    def accept(self, ctx: Context, record: dict[str, Any]) -> None:
        """Expose a (fresh or cached) record's results to downstream stages."""
        ctx.data[self.name] = record.get("data", {})
        for out_name, out in record.get("outputs", {}).items():
            ctx.artifacts[f"{self.name}.{out_name}"] = Artifact(out["digest"], ctx.cache.object_path(out["digest"]))

    def always_run(self, ctx: Context) -> bool:
        return False
