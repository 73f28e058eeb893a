"""A fake `tensorrt` module (10.13 or 11.4 flavour) that records calls and returns plausible objects.

Only names that exist in the real bindings' inventory of the chosen release are public here
(tests/test_tensorrt_api_contract.py checks it); helpers for the tests start with "_".
The parser reads the ONNX file with the `onnx` package; the "engine" is JSON describing the
network, its profiles and its fused layers; executing it runs `RULES[rule]` on device memory.
Parts: fake_enums (enums), fake_base (state, recording base, ILogger), fake_build (parser,
config, builder), fake_runtime (engine, context, runtime); this module assembles them.
"""

from __future__ import annotations

import importlib.machinery
import types
from typing import Any

from .fake_base import CACHE_MAGIC, PLAN_MAGIC, Env, ILogger
from .fake_build import (
    Builder,
    IBuilderConfig,
    IBuilderConfig10,
    IHostMemory,
    INetworkDefinition,
    IOptimizationProfile,
    ITensor,
    ITimingCache,
    OnnxParser,
    ParserError,
)
from .fake_enums import (
    BuilderFlag,
    DataType,
    ErrorCode,
    HardwareCompatibilityLevel,
    LayerInformationFormat,
    MemoryPoolType,
    NetworkDefinitionCreationFlag10,
    NetworkDefinitionCreationFlag11,
    ProfilingVerbosity,
    TensorIOMode,
    TilingOptimizationLevel,
)
from .fake_runtime import EngineInspector, ICudaEngine, IExecutionContext, Runtime
from .gpu import FakeGpu

__all__ = ["CACHE_MAGIC", "PLAN_MAGIC", "make_tensorrt"]


# -- the module ----------------------------------------------------------------------------------
_COMMON = (ILogger, ITensor, INetworkDefinition, ParserError, OnnxParser, IOptimizationProfile, IHostMemory,
           ITimingCache, Builder, EngineInspector, ICudaEngine, IExecutionContext, Runtime,
           MemoryPoolType, ProfilingVerbosity, HardwareCompatibilityLevel, BuilderFlag,
           TilingOptimizationLevel, LayerInformationFormat, TensorIOMode, DataType, ErrorCode)
_MODULE_CLASSES = ("Builder", "OnnxParser", "Runtime")


def make_tensorrt(version: str = "10.13.3.9", gpu: FakeGpu | None = None,
                  without: tuple[str, ...] = (), real_cuda: Any = None) -> types.ModuleType:
    """A fake `tensorrt` of the given release. `without` drops public names (an older release);
    `real_cuda` (cuda.bindings.runtime) makes engines run as identity on a real GPU."""
    env = Env(version=version, gpu=gpu or FakeGpu(), real_cuda=real_cuda)
    mod = types.ModuleType("tensorrt")
    mod.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # importlib.util.find_spec sees it
    mod.__version__ = version
    mod._env = env
    for cls in _COMMON:
        bound = cls
        if cls.__name__ in _MODULE_CLASSES:
            bound = type(cls.__name__, (cls,), {"_env": env, "__module__": __name__})
        setattr(mod, cls.__name__, bound)
    flag = NetworkDefinitionCreationFlag10 if env.major < 11 else NetworkDefinitionCreationFlag11
    mod.NetworkDefinitionCreationFlag = flag
    mod.IBuilderConfig = IBuilderConfig10 if env.major < 11 else IBuilderConfig
    for name in without:  # module names are removed; object attributes are hidden
        if hasattr(mod, name):
            delattr(mod, name)
        env.hidden.add(name)
    return mod
