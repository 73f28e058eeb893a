"""The fake libcudart behind Polygraphy's CUDA wrapper: C semantics (out-parameters written through
pointers, int error codes), called the way Polygraphy and trtmake call libcudart with ctypes."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from trt_double import Device, FakeCudart, install
from trt_double.cudart import INVALID_DEVICE, INVALID_VALUE, NO_DEVICE, SUCCESS


def test_device_queries_with_byref_pointer_and_address():
    h = FakeCudart([Device("NVIDIA H100 80GB HBM3", (9, 0)), Device("NVIDIA L4", (8, 9))])
    count = ctypes.c_int(-1)
    assert h.cudaGetDeviceCount(ctypes.byref(count)) == SUCCESS and count.value == 2
    major, minor = ctypes.c_int(), ctypes.c_int()
    assert h.cudaDeviceGetAttribute(ctypes.pointer(major), 75, 1) == SUCCESS
    assert h.cudaDeviceGetAttribute(ctypes.addressof(minor), ctypes.c_int(76), ctypes.c_int(1)) == SUCCESS
    assert (major.value, minor.value) == (8, 9)
    assert h.cudaSetDevice(1) == SUCCESS
    current = ctypes.c_int(-1)
    assert h.cudaGetDevice(ctypes.byref(current)) == SUCCESS and current.value == 1
    prop = ctypes.create_string_buffer(1024)
    assert h.cudaGetDeviceProperties_v2(ctypes.byref(prop), 0) == SUCCESS
    assert prop.raw[:256].split(b"\0")[0] == b"NVIDIA H100 80GB HBM3"
    version = ctypes.c_int()
    assert h.cudaRuntimeGetVersion(ctypes.byref(version)) == SUCCESS and version.value == 13000
    assert h.cudaDriverGetVersion(ctypes.byref(version)) == SUCCESS and version.value == 13000


def test_error_codes():
    h = FakeCudart([Device()])
    out = ctypes.c_int(-7)
    assert h.cudaSetDevice(1) == INVALID_DEVICE
    assert h.cudaDeviceGetAttribute(ctypes.byref(out), 75, 3) == INVALID_DEVICE
    assert h.cudaGetDeviceProperties_v2(ctypes.create_string_buffer(1024), 5) == INVALID_DEVICE
    assert out.value == -7  # untouched on error
    empty = FakeCudart([])
    assert empty.cudaGetDeviceCount(ctypes.byref(out)) == NO_DEVICE and out.value == 0
    assert h.cudaFree(ctypes.c_void_p(12345)) == INVALID_VALUE
    assert h.cudaFree(ctypes.c_void_p(None)) == SUCCESS  # cudaFree(NULL) is a no-op


def test_memcpy_checks_device_pointers():
    h = FakeCudart([Device()])
    ptr = ctypes.c_void_p()
    assert h.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(16)) == SUCCESS and ptr.value
    host = np.arange(4, dtype=np.float32)
    back = np.zeros(4, np.float32)
    assert h.cudaMemcpy(ptr, ctypes.c_void_p(host.ctypes.data), ctypes.c_size_t(16), ctypes.c_int(1)) == SUCCESS
    assert h.cudaMemcpy(ctypes.c_void_p(back.ctypes.data), ptr, ctypes.c_size_t(16), ctypes.c_int(2)) == SUCCESS
    np.testing.assert_array_equal(back, host)
    # past the end of the allocation, or a host pointer where a device one belongs
    assert h.cudaMemcpy(ptr, ctypes.c_void_p(host.ctypes.data), ctypes.c_size_t(32), ctypes.c_int(1)) == INVALID_VALUE
    assert h.cudaMemcpy(ctypes.c_void_p(back.ctypes.data), ctypes.c_void_p(host.ctypes.data), ctypes.c_size_t(16),
                        ctypes.c_int(2)) == INVALID_VALUE
    assert h.cudaFree(ptr) == SUCCESS and h.allocations == {}


def test_polygraphy_wrapper_runs_unchanged_on_the_fake(monkeypatch):
    from polygraphy import cuda

    sim = install(monkeypatch, version="10.13.3.9")
    with cuda.Stream() as stream, cuda.DeviceArray(shape=(2, 3), dtype=np.float32) as arr:
        data = np.arange(6, dtype=np.float32).reshape(2, 3)
        arr.copy_from(data, stream=stream)
        np.testing.assert_array_equal(arr.numpy(), data)
        stream.synchronize()
        assert len(sim.cuda.allocations) == 1 and len(sim.cuda.streams) == 1
    assert sim.cuda.allocations == {} and sim.cuda.streams == set()
    assert sim.cuda.calls["cudaMemcpyAsync"] == 1 and sim.cuda.calls["cudaMemcpy"] == 1


def test_polygraphy_reports_a_failing_call(monkeypatch):
    from polygraphy import cuda
    from polygraphy.exception import PolygraphyException

    install(monkeypatch, version="11.4.0.106")
    with pytest.raises(PolygraphyException, match="CUDA Error: 1"):
        cuda.wrapper().free(4096)


def test_simulator_reads_the_compute_capability_through_the_wrapper(monkeypatch):
    sim = install(monkeypatch, version="11.4.0.106", devices=[Device("NVIDIA GeForce RTX 4090", (8, 9))])
    assert sim.state.compute_capability() == (8, 9)
    assert sim.trt.Builder(sim.trt.Logger()).num_DLA_cores == 0
    assert sim.cuda.calls["cudaDeviceGetAttribute"] == 2
