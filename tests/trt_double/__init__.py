"""Test doubles for TensorRT and cuda-python (no GPU, no native TensorRT libraries needed).

    doubles = install(monkeypatch, version="11.4.0.106")
    doubles.trt, doubles.cuda, doubles.gpu, doubles.rec

`install` puts the fake modules into sys.modules as `tensorrt` and `cuda.bindings.runtime`.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

from .fake_tensorrt import make_tensorrt
from .gpu import CUDA_RUNTIME_NAMES, Device, FakeGpu, cudaError_t, make_cuda_runtime
from .recorder import Call, Recorder

__all__ = ["CUDA_RUNTIME_NAMES", "Call", "Device", "Doubles", "FakeGpu", "Recorder", "cudaError_t",
           "install", "make_cuda_runtime", "make_tensorrt", "remove_cuda"]


@dataclass
class Doubles:
    trt: types.ModuleType
    cuda: types.ModuleType
    gpu: FakeGpu

    @property
    def rec(self) -> Recorder:
        return self.gpu.recorder

    @property
    def env(self) -> Any:
        return self.trt._env


def install(monkeypatch: Any, version: str = "10.13.3.9", gpu: FakeGpu | None = None,
            without: tuple[str, ...] = (), cuda_layout: str = "bindings", with_trt: bool = True) -> Doubles:
    """Install the doubles. cuda_layout "bindings" = cuda.bindings.runtime, "cudart" = cuda.cudart."""
    gpu = gpu or FakeGpu()
    trt = make_tensorrt(version, gpu, without)
    runtime = make_cuda_runtime(gpu)
    cuda_pkg = types.ModuleType("cuda")
    cuda_pkg.__path__ = []
    monkeypatch.setitem(sys.modules, "cuda", cuda_pkg)
    if cuda_layout == "bindings":
        bindings = types.ModuleType("cuda.bindings")
        bindings.__path__ = []
        bindings.runtime = runtime
        cuda_pkg.bindings = bindings
        monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
        monkeypatch.setitem(sys.modules, "cuda.cudart", None)
    else:  # cuda-python < 12.6: no cuda.bindings (a real one may be installed here: hide it)
        cuda_pkg.cudart = runtime
        monkeypatch.setitem(sys.modules, "cuda.bindings", None)
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
        monkeypatch.setitem(sys.modules, "cuda.cudart", runtime)
    if with_trt:
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
    else:
        monkeypatch.setitem(sys.modules, "tensorrt", None)  # import raises ImportError
    return Doubles(trt, runtime, gpu)


def remove_cuda(monkeypatch: Any) -> None:
    """Make every cuda-python layout fail to import."""
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
