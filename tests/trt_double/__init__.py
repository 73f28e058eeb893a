"""A TensorRT simulator for tests (no GPU, no native TensorRT libraries needed).

    sim = install(monkeypatch, version="11.4.0.106")        # or install(None, ...) outside pytest
    import tensorrt as trt                                   # the simulated module of that release
    sim.trt, sim.cuda, sim.log, sim.messages("ERROR"), sim.unsupported_ops, sim.fail_build

`install` puts a simulated `tensorrt` module ("10.13.3.9" or "11.4.0.106") into sys.modules and,
for cuda="fake", a fake libcudart (host memory, `cudart.FakeCudart`) behind Polygraphy's CUDA
wrapper, so Polygraphy's own TensorRT loaders and TrtRunner run unchanged. With cuda="real" the
simulator uses Polygraphy's wrapper on the real libcudart (a GPU machine): engines then read and
write real device memory. `run.py` runs trtmake's CLI with it; `selfcheck.py` checks it.

What is simulated faithfully: the API surface of each release (classes, methods, argument names
and overloads, properties and read-only-ness, enum members and values: generated or checked
from NVIDIA's binding sources in tests/data/trt_api/), pybind11's TypeErrors, the raises of the
bindings (IOptimizationProfile.set_shape, set_optimization_profile_async), failures reported
through the logger (parser errors, builds, plans of another release or compute capability,
timing caches of another release or device, the one-logger-per-process warning), and numbers:
an engine runs its ONNX graph on onnxruntime (CPU).

Not simulated: TensorRT's optimizer (no tactics, no reduced-precision arithmetic: a 10.x FP16
build reports Half layers but computes what the graph computes; the inspector's fusions are
plausible, not TensorRT's own, and it emits no reformat layers), building networks layer by layer
(INetworkDefinition is a read-only view of the parsed ONNX graph; add_* methods are absent),
shape tensors (set_shape_input, get_tensor_profile_values), plugins, refitting, DLA, implicit INT8
calibration, algorithm selectors, stream readers/writers, weight streaming, debug tensors,
profilers, execute_v2, CUDA graphs, non-linear tensor formats (I/O is always LINEAR), more than
the current device, asynchrony (execute_async_v3 runs synchronously).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from .cudart import Device, FakeCudart, wrap
from .module import RELEASES, make_tensorrt
from .state import State

__all__ = ["RELEASES", "Device", "FakeCudart", "Sim", "install", "make_tensorrt"]


@dataclass
class Sim:
    """What install() returns: the module, the fake CUDA handle and the knobs."""

    trt: Any
    cuda: FakeCudart | None  # None with cuda="real"
    state: State

    @property
    def log(self) -> list[tuple[str, str]]:
        """(severity name, message) of everything the simulator logged, in order."""
        return self.state.log

    @property
    def unsupported_ops(self) -> set[str]:
        """ONNX op types the parser rejects (UNSUPPORTED_NODE); add to it to simulate a missing importer."""
        return self.state.unsupported_ops

    @property
    def fail_build(self) -> str | None:
        """A message: when set, build_serialized_network logs it as an error and returns None."""
        return self.state.fail_build

    @fail_build.setter
    def fail_build(self, message: str | None) -> None:
        self.state.fail_build = message

    def messages(self, severity: str) -> list[str]:
        return [m for s, m in self.state.log if s == severity]


def install(monkeypatch: Any = None, version: str = "10.13.3.9", devices: list[Device] | None = None,
            cuda: str = "fake") -> Sim:
    """Install the simulator as `tensorrt` (monkeypatch.setitem when given, else directly).

    devices: the fake GPUs (default one "NVIDIA H100 80GB HBM3", compute capability 9.0);
    cuda: "fake" (host memory behind Polygraphy's wrapper) or "real" (leave Polygraphy's wrapper alone).
    """
    if cuda not in ("fake", "real"):
        raise ValueError(f"cuda must be 'fake' or 'real', not {cuda!r}")
    state = State(version)
    trt = make_tensorrt(version, state)
    handle = None
    if monkeypatch is not None:
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
    else:
        sys.modules["tensorrt"] = trt
    _reset_polygraphy_trt(monkeypatch)
    if cuda == "fake":
        from polygraphy.cuda import cuda as pcuda

        handle = FakeCudart(list(devices) if devices is not None else [Device()])
        if monkeypatch is not None:
            monkeypatch.setattr(pcuda, "G_CUDA", wrap(handle))
        else:
            pcuda.G_CUDA = wrap(handle)
    return Sim(trt, handle, state)


def _reset_polygraphy_trt(monkeypatch: Any) -> None:
    """Polygraphy caches the `tensorrt` it imported (each lazy import keeps its module) and the
    logger it built from it: drop both, so the next use picks up the module just installed.
    (Only tests meet this: a process has one real TensorRT.)"""
    for name, module in list(sys.modules.items()):
        if not name.startswith("polygraphy") or module is None:
            continue
        for value in list(vars(module).values()):
            if type(value).__name__ != "LazyModule":
                continue
            cached = object.__getattribute__(value, "module")
            if cached is not None and getattr(cached, "__name__", "") == "tensorrt":
                object.__setattr__(value, "module", None)
    util = sys.modules.get("polygraphy.backend.trt.util")
    if util is not None:
        if monkeypatch is not None:
            monkeypatch.setattr(util, "TRT_LOGGER", None)
        else:
            util.TRT_LOGGER = None
