"""The export stage's key components, computed without importing torch.

key = export config slice (canonical; the weights *path* left out) + the version of a trtmake zoo
factory's own code (zoo.VERSION) + the weights file's digest + torch and onnx versions + the
versions of the packages holding the model code. Shaped like
`trtmake.keys.StageKey(config=..., inputs=..., toolchain=...)`.
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from trtmake.export import zoo
from trtmake.export.factory import weights_path
from trtmake.export.spec import ExportSpec
from trtmake.export.torch_export import require_torch
from trtmake.hashing import digest_file
from trtmake.keys import toolchain_versions


def export_key_inputs(spec: ExportSpec, digest: Callable[[Path], str] = digest_file) -> dict[str, Any]:
    """{config, inputs: {weights: digest}, toolchain: {torch, onnx, <model-code packages>}}.

    `digest` may be a StatCache's `digest` so an unchanged weights file is not re-read.
    Raises MissingDependency when torch is not installed.
    """
    require_torch()
    path = weights_path(spec)
    inputs = {} if path is None else {"weights": digest(path)}
    toolchain = toolchain_versions("torch", "onnx", *code_packages(spec))
    config = spec.config()
    version = zoo_version(spec.factory)
    if version is not None:
        config["zoo_version"] = version
    return {"config": config, "inputs": inputs, "toolchain": toolchain}


def zoo_version(factory: str) -> int | None:
    """The version of a trtmake zoo factory's code (zoo.VERSION; 0 for one not listed), None for
    any other factory (the user's code: its package's version, if any, is in the toolchain)."""
    module, _, name = factory.rpartition(".")
    return zoo.VERSION.get(name, 0) if module == zoo.__name__ else None


def code_packages(spec: ExportSpec) -> list[str]:
    """Installed distributions that hold the factory's and weights_from's code (no imports).

    trtmake's own zoo entries name theirs in `zoo.REQUIRES`; a module in the user's source tree
    belongs to no distribution, and its code is not part of the key.
    """
    names: set[str] = set()
    for dotted in (spec.factory, spec.weights_from):
        if not dotted:
            continue
        top = dotted.split(".")[0]
        if dotted.startswith(f"{zoo.__name__}."):
            names.update(zoo.REQUIRES.get(dotted.rsplit(".", 1)[1], ()))
        elif top != "trtmake":
            names.update(_distributions().get(top, ()))
    return sorted(names - {"torch", "onnx"})


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in metadata.packages_distributions().items()}


def export_summary(info: dict[str, Any]) -> dict[str, Any]:
    """What the source stage's record keeps of an export's own report."""
    keep = ("exporter", "torch", "opset", "max_abs_diff", "seconds", "warnings")
    return {k: info[k] for k in keep if k in info}
