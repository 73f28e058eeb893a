"""A fake libcudart `handle` for Polygraphy's CUDA wrapper: "device" memory is host memory.

Polygraphy's real `polygraphy.cuda.Cuda` methods call it unchanged (`handle.cudaMalloc(byref(ptr),
c_size_t(n))` ...), and trtmake reads GPU facts through the same handle with ctypes, so every
function here has C semantics: out-parameters are written through the pointer it is given
(`ctypes.byref(x)`, `ctypes.pointer(x)` or a plain address), and it returns a cudaError_t int.

    handle = FakeCudart([Device("NVIDIA H100 80GB HBM3", (9, 0))])
    polygraphy.cuda.cuda.G_CUDA = wrap(handle)      # what install() does
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field
from typing import Any

# cudaError_t values (CUDA runtime API, driver_types.h)
SUCCESS = 0
INVALID_VALUE = 1
MEMORY_ALLOCATION = 2
NO_DEVICE = 100
INVALID_DEVICE = 101
INVALID_RESOURCE_HANDLE = 400

ATTR_CC_MAJOR = 75  # cudaDevAttrComputeCapabilityMajor
ATTR_CC_MINOR = 76  # cudaDevAttrComputeCapabilityMinor
MEMCPY_KINDS = {0: "HostToHost", 1: "HostToDevice", 2: "DeviceToHost", 3: "DeviceToDevice", 4: "Default"}


@dataclass(frozen=True)
class Device:
    """One simulated GPU: what cudaGetDeviceProperties_v2 and the CC attributes report."""

    name: str = "NVIDIA H100 80GB HBM3"
    compute_capability: tuple[int, int] = (9, 0)
    total_memory: int = 80 * 1024**3


def _value(arg: Any) -> int:
    """The integer an argument passes by value (a ctypes scalar or a Python int)."""
    if arg is None:
        return 0
    if isinstance(arg, ctypes._SimpleCData):
        return int(arg.value or 0)
    return int(arg)


def _store(out: Any, ctype: Any, value: int) -> None:
    """Write through an out-parameter: byref(x), pointer(x) or an address, as C would."""
    if out is None:
        raise ValueError("NULL out-parameter")
    target = getattr(out, "_obj", None)  # ctypes.byref(x)
    if target is None and isinstance(out, ctypes._Pointer):
        target = out.contents
    if target is None:
        ctype.from_address(_value(out)).value = value
        return
    if isinstance(target, ctypes._SimpleCData):
        target.value = value
    else:  # a struct or array passed by reference: write at its address
        ctype.from_address(ctypes.addressof(target)).value = value


def _address(out: Any) -> int:
    target = getattr(out, "_obj", None)
    if target is not None:
        return ctypes.addressof(target)
    if isinstance(out, ctypes._Pointer):
        return ctypes.addressof(out.contents)
    return _value(out)


@dataclass
class FakeCudart:
    """The functions of libcudart that Polygraphy and trtmake call, on host memory.

    `allocations` maps device pointer -> ctypes buffer; `calls` counts calls per function;
    `runtime_version`/`driver_version` are what the version queries report (13000 = CUDA 13.0).
    """

    devices: list[Device] = field(default_factory=lambda: [Device()])
    runtime_version: int = 13000
    driver_version: int = 13000
    current: int = 0
    allocations: dict[int, Any] = field(default_factory=dict)
    streams: set[int] = field(default_factory=set)
    events: dict[int, float | None] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _next_stream: int = 0x5000

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    # -- devices -----------------------------------------------------------------------------
    def cudaGetDeviceCount(self, count: Any) -> int:
        self._count("cudaGetDeviceCount")
        _store(count, ctypes.c_int, len(self.devices))
        return SUCCESS if self.devices else NO_DEVICE

    def cudaGetDevice(self, device: Any) -> int:
        self._count("cudaGetDevice")
        if not self.devices:
            return NO_DEVICE
        _store(device, ctypes.c_int, self.current)
        return SUCCESS

    def cudaSetDevice(self, device: Any) -> int:
        self._count("cudaSetDevice")
        index = _value(device)
        if not 0 <= index < len(self.devices):
            return INVALID_DEVICE if self.devices else NO_DEVICE
        self.current = index
        return SUCCESS

    def cudaDeviceGetAttribute(self, value: Any, attr: Any, device: Any) -> int:
        self._count("cudaDeviceGetAttribute")
        index, attr = _value(device), _value(attr)
        if not 0 <= index < len(self.devices):
            return INVALID_DEVICE
        major, minor = self.devices[index].compute_capability
        if attr not in (ATTR_CC_MAJOR, ATTR_CC_MINOR):
            return INVALID_VALUE
        _store(value, ctypes.c_int, major if attr == ATTR_CC_MAJOR else minor)
        return SUCCESS

    def cudaGetDeviceProperties_v2(self, prop: Any, device: Any) -> int:
        """Writes the name, NUL-terminated, into the first 256 bytes of cudaDeviceProp."""
        self._count("cudaGetDeviceProperties_v2")
        index = _value(device)
        if not 0 <= index < len(self.devices):
            return INVALID_DEVICE
        name = self.devices[index].name.encode()[:255] + b"\0"
        ctypes.memmove(_address(prop), name, len(name))
        return SUCCESS

    def cudaRuntimeGetVersion(self, version: Any) -> int:
        self._count("cudaRuntimeGetVersion")
        _store(version, ctypes.c_int, self.runtime_version)
        return SUCCESS

    def cudaDriverGetVersion(self, version: Any) -> int:
        self._count("cudaDriverGetVersion")
        _store(version, ctypes.c_int, self.driver_version)
        return SUCCESS

    def cudaGetDeviceProperties(self, prop: Any, device: Any) -> int:
        """The pre-12 symbol: same layout for the name field."""
        return self.cudaGetDeviceProperties_v2(prop, device)

    # -- events (timing) ----------------------------------------------------------------------
    def cudaEventCreate(self, event: Any) -> int:
        self._count("cudaEventCreate")
        self._next_stream += 0x10
        self.events[self._next_stream] = None
        _store(event, ctypes.c_void_p, self._next_stream)
        return SUCCESS

    def cudaEventRecord(self, event: Any, stream: Any = None) -> int:
        self._count("cudaEventRecord")
        ptr = _value(event)
        if ptr not in self.events or not self._stream_ok(stream):
            return INVALID_RESOURCE_HANDLE
        self.events[ptr] = time.perf_counter()
        return SUCCESS

    def cudaEventSynchronize(self, event: Any) -> int:
        self._count("cudaEventSynchronize")
        return SUCCESS if _value(event) in self.events else INVALID_RESOURCE_HANDLE

    def cudaEventElapsedTime(self, ms: Any, start: Any, end: Any) -> int:
        """Milliseconds between two recorded events (host time: the fake runs synchronously)."""
        self._count("cudaEventElapsedTime")
        t0, t1 = self.events.get(_value(start)), self.events.get(_value(end))
        if t0 is None or t1 is None:
            return INVALID_RESOURCE_HANDLE
        _store(ms, ctypes.c_float, (t1 - t0) * 1000.0)
        return SUCCESS

    def cudaEventDestroy(self, event: Any) -> int:
        self._count("cudaEventDestroy")
        return SUCCESS if self.events.pop(_value(event), 0) != 0 else INVALID_RESOURCE_HANDLE

    # -- streams -----------------------------------------------------------------------------
    def cudaStreamCreate(self, stream: Any) -> int:
        self._count("cudaStreamCreate")
        self._next_stream += 0x10
        self.streams.add(self._next_stream)
        _store(stream, ctypes.c_void_p, self._next_stream)
        return SUCCESS

    def _stream_ok(self, stream: Any) -> bool:
        ptr = _value(stream)
        return ptr == 0 or ptr in self.streams  # 0 = the legacy default stream

    def cudaStreamSynchronize(self, stream: Any) -> int:
        self._count("cudaStreamSynchronize")
        return SUCCESS if self._stream_ok(stream) else INVALID_RESOURCE_HANDLE

    def cudaStreamDestroy(self, stream: Any) -> int:
        self._count("cudaStreamDestroy")
        ptr = _value(stream)
        if ptr not in self.streams:
            return INVALID_RESOURCE_HANDLE
        self.streams.discard(ptr)
        return SUCCESS

    # -- memory ------------------------------------------------------------------------------
    def cudaMalloc(self, ptr: Any, nbytes: Any) -> int:
        self._count("cudaMalloc")
        size = _value(nbytes)
        buf = ctypes.create_string_buffer(max(size, 1))
        address = ctypes.addressof(buf)
        self.allocations[address] = buf
        _store(ptr, ctypes.c_void_p, address)
        return SUCCESS

    def cudaFree(self, ptr: Any) -> int:
        self._count("cudaFree")
        address = _value(ptr)
        if address == 0:
            return SUCCESS  # cudaFree(NULL) is a no-op
        if self.allocations.pop(address, None) is None:
            return INVALID_VALUE
        return SUCCESS

    def device_range(self, address: int, nbytes: int) -> bool:
        """True if [address, address+nbytes) lies inside one allocation."""
        for start, buf in self.allocations.items():
            if start <= address and address + nbytes <= start + ctypes.sizeof(buf):
                return True
        return False

    def cudaMemcpy(self, dst: Any, src: Any, nbytes: Any, kind: Any) -> int:
        self._count("cudaMemcpy")
        return self._copy(_value(dst), _value(src), _value(nbytes), _value(kind))

    def cudaMemcpyAsync(self, dst: Any, src: Any, nbytes: Any, kind: Any, stream: Any) -> int:
        self._count("cudaMemcpyAsync")
        if not self._stream_ok(stream):
            return INVALID_RESOURCE_HANDLE
        return self._copy(_value(dst), _value(src), _value(nbytes), _value(kind))

    def _copy(self, dst: int, src: int, nbytes: int, kind: int) -> int:
        if kind not in MEMCPY_KINDS:
            return INVALID_VALUE
        if nbytes == 0:
            return SUCCESS
        name = MEMCPY_KINDS[kind]
        if name.startswith("Device") and not self.device_range(src, nbytes):
            return INVALID_VALUE
        if name.endswith("ToDevice") and not self.device_range(dst, nbytes):
            return INVALID_VALUE
        if not dst or not src:
            return INVALID_VALUE
        ctypes.memmove(dst, src, nbytes)
        return SUCCESS


def wrap(handle: FakeCudart) -> Any:
    """A real `polygraphy.cuda.Cuda` object whose libcudart handle is `handle`."""
    from polygraphy.cuda import cuda as pcuda

    wrapper = pcuda.Cuda.__new__(pcuda.Cuda)  # skip __init__: it would dlopen libcudart
    wrapper.handle = handle
    return wrapper
