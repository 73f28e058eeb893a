"""What every stage shares: the run's state, the inputs a stage sees, what it returns, its interface.

A stage declares the config keys it reads (`params`, DVC's params model); `config_slice` copies
that part of the target's config into its StageInput, and nothing else of the config reaches it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from trtmake.backends.base import Backend
from trtmake.cache import ActionRecord, Cache
from trtmake.keys import StageKey
from trtmake.profiles import Profile


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
    """The key cannot be computed yet: the stage named `stage` has not produced what it needs
    (explain: that stage will be rebuilt first)."""

    def __init__(self, stage: str):
        super().__init__(stage)
        self.stage = stage


@dataclass
class Context:
    """One target's run: what its stages produced so far and the run's memos; no config (each
    stage reads its own slice from its StageInput)."""

    name: str  # the target's
    root: Path  # the project root (datasets resolve their paths from it)
    path: Callable[[str], Path]  # a path in the config, resolved (Target.path)
    cache: Cache
    backend: Backend
    options: Any  # the backend's parsed options (backend.parse_options), once per target
    backend_missing: str | None = None  # explain: why the backend cannot run here
    explain: bool = False
    on_progress: Callable[[str, int, int], None] = lambda stage, done, total: None
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: list[ActionRecord] = field(default_factory=list)  # records to publish once the stage succeeds
    profile: Profile | None = None  # the target's (first) profile, static inputs filled from the model (source)
    profiles: tuple[Profile, ...] = ()  # all of them, in order (one engine holds them all)
    # memos of one run, cleared when it ends
    source_graph: tuple[Path, Any] | None = None  # the source stage's key parsed the model: run() reuses it
    validation_batches: dict[str, list[dict[str, Any]]] | None = None  # reference and validate feed the same

    def artifact(self, name: str) -> Artifact:
        if name not in self.artifacts:
            raise Upstream(name.split(".")[0])
        return self.artifacts[name]

    def stage_data(self, name: str) -> dict[str, Any]:
        if name not in self.data:
            raise Upstream(name)
        return self.data[name]

    def host(self) -> str:
        return socket.gethostname()


@dataclass(frozen=True)
class StageInput:
    """What a stage's key and run see: its declared config slice and the run it belongs to."""

    params: dict[str, Any]
    ctx: Context

    @property
    def backend(self) -> Backend:
        return self.ctx.backend

    @property
    def options(self) -> Any:
        return self.ctx.options

    @property
    def profile(self) -> Profile:
        return self.profiles[0]

    @property
    def profiles(self) -> tuple[Profile, ...]:
        if not self.ctx.profiles:
            raise Upstream("source")
        return self.ctx.profiles

    def artifact(self, name: str) -> Artifact:
        return self.ctx.artifact(name)


class Stage:
    """A pure function of its declared inputs. Subclasses define name, version, params, key, run."""

    name = "stage"
    version = 1
    params: tuple[str, ...] = ()  # the config keys (dotted) or groups it reads
    served: dict[str, str] = {}  # report entry -> artifact name: what the report hands out
    uses_backend = False  # its key needs the backend's toolchain (explain: unknown without it)

    def applies(self, params: dict[str, Any]) -> bool:
        """Whether this target's pipeline has this stage."""
        return True

    def key(self, inp: StageInput) -> StageKey:
        raise NotImplementedError

    def run(self, inp: StageInput, key: StageKey, workdir: Path) -> StageOutput:
        raise NotImplementedError

    def accept(self, inp: StageInput, record: ActionRecord) -> None:
        """Expose a (fresh, cached or fetched) record's results to downstream stages."""
        ctx = inp.ctx
        ctx.data[self.name] = record.data
        for out_name, out in record.outputs.items():
            ctx.artifacts[f"{self.name}.{out_name}"] = Artifact(out.digest, ctx.cache.object_path(out.digest))

    def check(self, inp: StageInput) -> None:
        """What must hold once it ran or its record was accepted, before the next stage."""

    def always_run(self, inp: StageInput) -> bool:
        return False

    def warnings(self, inp: StageInput) -> list[str]:
        """Notes for the report once every stage is done."""
        return []
