"""`backend: auto|onnxruntime|tensorrt` -> a backend instance and the reason it was chosen."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from trtmake.backends.base import Backend
from trtmake.backends.onnxruntime import OnnxruntimeBackend
from trtmake.errors import MissingDependency
from trtmake.heavy import lazy_import

tensorrt = lazy_import("trtmake.backends.tensorrt")


def select_backend(name: str, options: dict[str, Any] | None = None) -> tuple[Backend, str]:
    """`options` is the `backend` config group; TensorRT is probed on its `tensorrt.device`."""
    device = int(((options or {}).get("tensorrt") or {}).get("device", 0) or 0)
    if name == "onnxruntime":
        return OnnxruntimeBackend(), "backend=onnxruntime (asked for)"
    ok, why = _probe_tensorrt(device)
    if name == "tensorrt":
        if not ok:
            raise MissingDependency(
                f"backend=tensorrt: {why}; install TensorRT with pip install 'trtmake[tensorrt]' "
                "(CUDA 12) or 'trtmake[tensorrt-cu13]' (CUDA 13) on a machine with an NVIDIA GPU, "
                "or use backend=onnxruntime"
            )
        return tensorrt.TensorRTBackend(), f"backend=tensorrt (asked for): {why}"
    if ok:
        return tensorrt.TensorRTBackend(), f"auto: {why}"
    return OnnxruntimeBackend(), f"auto: onnxruntime CPU, since {why}"


def backend_named(name: str) -> Backend:
    """The backend of that name, not probed: its name, dialect and key slices work without its
    toolchain; fingerprint, build and load raise MissingDependency where it is absent."""
    return tensorrt.TensorRTBackend() if name == "tensorrt" else OnnxruntimeBackend()


def _probe_tensorrt(device: int) -> tuple[bool, str]:
    try:
        installed = find_spec("tensorrt") is not None
    except (ImportError, ValueError):  # a module entry of None, or a broken package
        installed = False
    if not installed:
        return False, "tensorrt is not installed"
    return tensorrt.probe(device)
