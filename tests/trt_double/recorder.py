"""Call recorder shared by the TensorRT and CUDA doubles: one list of (object, method, args)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    obj: str  # e.g. "Builder", "IBuilderConfig", "cuda"
    method: str  # method name, or "set:<property>" for a property assignment
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)

    def add(self, obj: str, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(Call(obj, method, args, kwargs))

    def methods(self, obj: str | None = None) -> list[str]:
        return [c.method for c in self.calls if obj is None or c.obj == obj]

    def of(self, method: str, obj: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (obj is None or c.obj == obj)]

    def args(self, method: str, obj: str | None = None) -> list[tuple[Any, ...]]:
        return [c.args for c in self.of(method, obj)]

    def index(self, method: str, obj: str | None = None, nth: int = 0) -> int:
        """Position of the nth call of `method` in the whole call list (for ordering checks)."""
        hits = [i for i, c in enumerate(self.calls) if c.method == method and (obj is None or c.obj == obj)]
        return hits[nth]
