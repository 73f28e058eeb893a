"""GPU facts from the CUDA runtime, through the libcudart handle Polygraphy's CUDA wrapper loaded.

Polygraphy (`polygraphy.cuda`) finds and loads libcudart with ctypes for its device memory and
streams; the facts an engine depends on (device name, compute capability, CUDA versions) come
from the same library, so trtmake needs no second CUDA binding (cuda-python). Every function used
here has had the same C signature since CUDA 10:

    cudaGetDeviceCount(int*)                     cudaDeviceGetAttribute(int*, int attr, int device)
    cudaRuntimeGetVersion(int*)                  cudaDriverGetVersion(int*)
    cudaGetDeviceProperties_v2(prop*, int)       (the name is the struct's first field, char[256])
"""

from __future__ import annotations

import ctypes
from typing import Any

from trtmake.errors import first_line

ATTR_COMPUTE_MAJOR = 75  # cudaDevAttrComputeCapabilityMajor
ATTR_COMPUTE_MINOR = 76  # cudaDevAttrComputeCapabilityMinor
PROP_BYTES = 4096  # larger than cudaDeviceProp of any CUDA release; only the name is read
ERRORS = {1: "cudaErrorInvalidValue", 3: "cudaErrorInitializationError", 35: "cudaErrorInsufficientDriver",
          100: "cudaErrorNoDevice", 101: "cudaErrorInvalidDevice"}


class CudaError(Exception):
    """A CUDA runtime call failed, or libcudart could not be loaded."""


def libcudart() -> Any:
    """The ctypes handle of libcudart that Polygraphy's global CUDA wrapper holds."""
    try:
        from polygraphy import cuda as pg_cuda
    except ImportError as exc:
        raise CudaError(f"polygraphy is not installed ({exc})") from None
    try:
        return pg_cuda.wrapper().handle
    except Exception as exc:  # Polygraphy raises its own exception when libcudart is missing
        raise CudaError(f"libcudart could not be loaded ({first_line(exc)})") from None


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CudaError(f"{what} failed: {ERRORS.get(int(status), f'cudaError {int(status)}')}")


def _int_out(lib: Any, fn: str, *args: Any) -> int:
    value = ctypes.c_int(0)
    _check(getattr(lib, fn)(ctypes.byref(value), *args), fn)
    return value.value


def version_string(value: int) -> str:
    """12080 -> "12.8" (CUDA encodes 1000 * major + 10 * minor)."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def device_count() -> int:
    return _int_out(libcudart(), "cudaGetDeviceCount")


def set_device(device: int) -> None:
    _check(libcudart().cudaSetDevice(ctypes.c_int(device)), "cudaSetDevice")


def gpu_facts(device: int) -> dict[str, str]:
    """GPU name, compute capability, CUDA runtime and driver versions of one device."""
    lib = libcudart()
    count = _int_out(lib, "cudaGetDeviceCount")
    if device >= count:
        raise CudaError(f"device {device} requested but {count} CUDA device(s) are visible")
    major = _int_out(lib, "cudaDeviceGetAttribute", ctypes.c_int(ATTR_COMPUTE_MAJOR), ctypes.c_int(device))
    minor = _int_out(lib, "cudaDeviceGetAttribute", ctypes.c_int(ATTR_COMPUTE_MINOR), ctypes.c_int(device))
    prop = ctypes.create_string_buffer(PROP_BYTES)
    get_props = getattr(lib, "cudaGetDeviceProperties_v2", None) or lib.cudaGetDeviceProperties
    _check(get_props(ctypes.byref(prop), ctypes.c_int(device)), "cudaGetDeviceProperties")
    name = prop.raw[:256].split(b"\0", 1)[0].decode(errors="replace").strip()
    driver = ctypes.c_int(0)
    driver_ok = lib.cudaDriverGetVersion(ctypes.byref(driver)) == 0 and driver.value
    return {
        "gpu": name,
        "compute_capability": f"{major}.{minor}",
        "cuda_runtime": version_string(_int_out(lib, "cudaRuntimeGetVersion")),
        "cuda_driver": version_string(driver.value) if driver_ok else "unknown",
    }
