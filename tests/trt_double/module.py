"""Assemble the simulated `tensorrt` module of one release from the implementation classes and
the binding JSON (see api.py for what is enforced)."""

from __future__ import annotations

import importlib.machinery
import types
from typing import Any

import numpy as np

from . import api
from .build import ImplBuilder, ImplDims, ImplILayer, ImplILogger, ImplINetworkDefinition, ImplITensor, ImplLogger, Obj
from .config import ImplIBuilderConfig, ImplIHostMemory, ImplIOptimizationProfile, ImplITimingCache
from .parser import ImplOnnxParser, ImplParserError
from .context import ImplIExecutionContext
from .runtime import ImplEngineInspector, ImplICudaEngine, ImplRuntime
from .state import State

RELEASES = ("10.13.3.9", "11.4.0.106")


class ImplIOutputAllocator(Obj):
    """Base of user output allocators (they define reallocate_output[_async] and notify_shape)."""

    def __init__(self) -> None:
        pass


class ImplIDebugListener(Obj):
    """Base of user debug listeners (they define process_debug_tensor)."""

    def __init__(self) -> None:
        pass


IMPLS = (ImplDims, ImplILogger, ImplLogger, ImplITensor, ImplILayer, ImplINetworkDefinition, ImplParserError, ImplOnnxParser,
         ImplIOptimizationProfile, ImplITimingCache, ImplIHostMemory, ImplIBuilderConfig, ImplBuilder, ImplRuntime,
         ImplICudaEngine, ImplIExecutionContext, ImplEngineInspector, ImplIOutputAllocator,
         ImplIDebugListener)
NUMPY_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
               "BOOL": np.bool_, "UINT8": np.uint8}


def make_tensorrt(version: str = "10.13.3.9", state: State | None = None) -> types.ModuleType:
    """A fresh simulated `tensorrt` module of `version` (one of RELEASES)."""
    if version not in RELEASES:
        raise ValueError(f"the TensorRT simulator knows releases {RELEASES}, not {version!r}")
    sig = api.signatures(version)
    state = state or State(version)
    mod = types.ModuleType("tensorrt")
    mod.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # importlib.util.find_spec finds it
    mod.__version__ = version
    mod.__file__ = __file__
    state.module = mod
    enums = api.make_enums(sig)
    for full, cls in enums.items():
        if "." not in full:
            setattr(mod, full, cls)
    classes: dict[str, type] = {}
    checker = api.Checker(enums, classes)
    for impl in IMPLS:
        name = impl.__name__.removeprefix("Impl")
        extra: dict[str, Any] = {"_s": state, "_m": mod}
        if name in ("ILogger", "Logger"):
            severity = enums["ILogger.Severity"]
            extra["Severity"] = severity
            extra.update(severity.__members__)  # py::enum_::export_values(): trt.Logger.WARNING
        bases = (classes["ILogger"],) if name == "Logger" else ()
        cls = api.finalize(impl, name, sig, checker, extra, bases)
        setattr(mod, name, cls)
    for name, entry in sig.get("attributes", {}).items():  # trt.float32 = DataType.FLOAT ...
        py = str(entry.get("py", ""))
        if py.startswith("DataType."):
            setattr(mod, name, mod.DataType[py.split(".", 1)[1]])

    def volume(iterable: Any) -> int:
        out = 1
        for d in iterable:
            out *= d
        return out

    def nptype(trt_type: Any) -> Any:
        if trt_type.name not in NUMPY_TYPES:
            raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
        return NUMPY_TYPES[trt_type.name]

    mod.volume, mod.nptype = volume, nptype
    mod.DataType.itemsize = property(lambda self: {"FLOAT": 4, "HALF": 2, "BF16": 2, "INT8": 1, "INT32": 4,
                                                   "INT64": 8, "BOOL": 1, "UINT8": 1, "FP8": 1, "INT4": 0.5,
                                                   "FP4": 0.5, "E8M0": 1}[self.name])
    mod.init_libnvinfer_plugins = lambda logger, namespace: True
    mod.get_plugin_registry = lambda: None
    mod._sim = state
    return mod
