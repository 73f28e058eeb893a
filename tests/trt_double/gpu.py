"""A fake GPU and a fake `cuda.bindings.runtime` module over it.

Device memory is a dict of bytearrays keyed by fake pointers; host<->device copies move real
bytes through ctypes, so a runner that passes a wrong pointer or size gets wrong numbers.
Each execute on a stream advances a device clock by `exec_ms`; CUDA events read that clock.
"""

from __future__ import annotations

import ctypes
import enum
import types
from dataclasses import dataclass, field
from typing import Any

from .recorder import Recorder

# Every name the double exposes, checked against cuda-bindings 13.5 (`cuda.bindings.runtime`);
# tests/test_tensorrt_api_contract.py rechecks them when cuda-python is importable.
CUDA_RUNTIME_NAMES = (
    "cudaDeviceProp", "cudaDriverGetVersion", "cudaError_t", "cudaEventCreate", "cudaEventDestroy",
    "cudaEventElapsedTime", "cudaEventRecord", "cudaEventSynchronize", "cudaEvent_t", "cudaFree",
    "cudaGetDeviceCount", "cudaGetDeviceProperties", "cudaMalloc", "cudaMemcpyAsync",
    "cudaMemcpyKind", "cudaRuntimeGetVersion", "cudaSetDevice", "cudaStreamCreate",
    "cudaStreamDestroy", "cudaStreamSynchronize", "cudaStream_t",
)


class cudaError_t(enum.IntEnum):  # noqa: N801 - the real binding's name
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidResourceHandle = 400


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3
    cudaMemcpyDefault = 4


class _Handle:
    def __init__(self, value: int) -> None:
        self._value = value

    def __int__(self) -> int:
        return self._value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._value:#x}>"


class cudaStream_t(_Handle):  # noqa: N801
    pass


class cudaEvent_t(_Handle):  # noqa: N801
    pass


@dataclass
class cudaDeviceProp:  # noqa: N801
    name: bytes = b""
    major: int = 0
    minor: int = 0


@dataclass
class Device:
    name: str = "NVIDIA H100 80GB HBM3"
    major: int = 9
    minor: int = 0


@dataclass
class FakeGpu:
    """Machine state behind the doubles. `devices=[]` with `error` set models a GPU-less host."""

    devices: list[Device] = field(default_factory=lambda: [Device()])
    error: cudaError_t = cudaError_t.cudaSuccess  # what cudaGetDeviceCount reports
    runtime_version: int = 12080
    driver_version: int = 12080
    exec_ms: list[float] = field(default_factory=lambda: [0.5])  # cycled per execution
    recorder: Recorder = field(default_factory=Recorder)
    memory: dict[int, bytearray] = field(default_factory=dict)
    streams: dict[int, float] = field(default_factory=dict)  # live stream -> device clock (ms)
    events: dict[int, float | None] = field(default_factory=dict)
    current_device: int = 0
    executions: int = 0
    _next: int = 0x7F00_0000_0000

    def handle(self) -> int:
        self._next += 0x1000
        return self._next

    def run_on_stream(self, stream: int) -> None:
        """A kernel ran on `stream`: advance that stream's clock."""
        self.streams[stream] += self.exec_ms[self.executions % len(self.exec_ms)]
        self.executions += 1

    def read(self, ptr: int, nbytes: int) -> bytes:
        return bytes(self.memory[ptr][:nbytes])

    def write(self, ptr: int, data: bytes) -> None:
        buf = self.memory[ptr]
        if len(data) > len(buf):
            raise AssertionError(f"device write of {len(data)} bytes into a {len(buf)}-byte buffer")
        buf[: len(data)] = data


def make_cuda_runtime(gpu: FakeGpu) -> types.ModuleType:
    """A module with the cuda-python runtime calls the backend uses, each returning (err, ...)."""
    rec = gpu.recorder
    ok = cudaError_t.cudaSuccess
    mod = types.ModuleType("cuda.bindings.runtime")

    def call(name: str, *args: Any) -> None:
        rec.add("cuda", name, *args)

    def cudaGetDeviceCount():
        call("cudaGetDeviceCount")
        return (gpu.error, None) if gpu.error else (ok, len(gpu.devices))

    def cudaGetDeviceProperties(device):
        call("cudaGetDeviceProperties", device)
        if gpu.error or device >= len(gpu.devices):
            return (gpu.error or cudaError_t.cudaErrorInvalidDevice, None)
        d = gpu.devices[device]
        return ok, cudaDeviceProp(d.name.encode() + b"\0" * 8, d.major, d.minor)

    def cudaRuntimeGetVersion():
        call("cudaRuntimeGetVersion")
        return ok, gpu.runtime_version

    def cudaDriverGetVersion():
        call("cudaDriverGetVersion")
        return ok, gpu.driver_version

    def cudaSetDevice(device):
        call("cudaSetDevice", device)
        if device >= len(gpu.devices):
            return (cudaError_t.cudaErrorInvalidDevice,)
        gpu.current_device = device
        return (ok,)

    def cudaMalloc(size):
        call("cudaMalloc", size)
        ptr = gpu.handle()
        gpu.memory[ptr] = bytearray(size)
        return ok, ptr

    def cudaFree(ptr):
        call("cudaFree", ptr)
        return (ok,) if gpu.memory.pop(int(ptr), None) is not None else (cudaError_t.cudaErrorInvalidValue,)

    def cudaMemcpyAsync(dst, src, count, kind, stream):
        call("cudaMemcpyAsync", dst, src, count, kind, stream)
        if int(stream) not in gpu.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            gpu.write(int(dst), ctypes.string_at(src, count))
        elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            data = gpu.read(int(src), count)
            ctypes.memmove(dst, data, count)
        else:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (ok,)

    def cudaStreamCreate():
        call("cudaStreamCreate")
        handle = gpu.handle()
        gpu.streams[handle] = 0.0
        return ok, cudaStream_t(handle)

    def cudaStreamSynchronize(stream):
        call("cudaStreamSynchronize", stream)
        return (ok,) if int(stream) in gpu.streams else (cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaStreamDestroy(stream):
        call("cudaStreamDestroy", stream)
        if gpu.streams.pop(int(stream), None) is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return (ok,)

    def cudaEventCreate():
        call("cudaEventCreate")
        handle = gpu.handle()
        gpu.events[handle] = None
        return ok, cudaEvent_t(handle)

    def cudaEventRecord(event, stream):
        call("cudaEventRecord", event, stream)
        gpu.events[int(event)] = gpu.streams[int(stream)]
        return (ok,)

    def cudaEventSynchronize(event):
        call("cudaEventSynchronize", event)
        return (ok,)

    def cudaEventElapsedTime(start, end):
        call("cudaEventElapsedTime", start, end)
        t0, t1 = gpu.events[int(start)], gpu.events[int(end)]
        if t0 is None or t1 is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle, None)
        return ok, t1 - t0

    def cudaEventDestroy(event):
        call("cudaEventDestroy", event)
        gpu.events.pop(int(event), None)
        return (ok,)

    local = dict(locals())
    for name in CUDA_RUNTIME_NAMES:
        setattr(mod, name, local.get(name) or globals()[name])
    return mod
