"""The backend interface: fingerprint, build, load -> runner (DESIGN.md section 6).

A backend turns the precision stage's ONNX graph into an engine file plus layer information,
and loads an engine into a runner that validation uses. Nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

from trtmake.profiles import Profile


@dataclass(frozen=True)
class BuildSpec:
    """Everything a build reads. `options` is the plain-dict config slice of the backend."""

    onnx_path: Path
    profiles: tuple[Profile, ...]
    options: dict[str, Any]
    timing_cache: Path | None = None  # pinned timing cache (tensorrt), an input of the key
    nodes: int | None = None  # node count of onnx_path when already known (saves a parse for layer info)


@dataclass
class BuildResult:
    """Files a build wrote into its workdir; the executor publishes them into the cache."""

    engine_path: Path
    layer_info: dict[str, Any]
    log: str = ""
    timing_cache_path: Path | None = None  # the timing cache the build produced (an output)
    extra: dict[str, Any] = field(default_factory=dict)


class Runner(Protocol):
    """A loaded engine. Used as a context manager; infer/time are valid inside it."""

    def __enter__(self) -> "Runner": ...

    def __exit__(self, *exc: object) -> None: ...

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def time(self, feeds: dict[str, np.ndarray], iters: int, warmup: int) -> list[float]:
        """Run `warmup` untimed then `iters` timed inferences; return per-run latency in ms."""
        ...


class Backend(Protocol):
    name: str

    def fingerprint(self, options: dict[str, Any]) -> dict[str, str]:
        """The toolchain facts an engine built with these options depends on."""
        ...

    def build(self, spec: BuildSpec, workdir: Path) -> BuildResult: ...

    def load(self, engine_path: Path, options: dict[str, Any]) -> Runner: ...
