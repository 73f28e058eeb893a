"""`backend: auto|onnxruntime|tensorrt` -> a backend instance and the reason it was chosen."""

from __future__ import annotations

from typing import Any

from trtmake.errors import MissingDependency


def select_backend(name: str) -> tuple[Any, str]:
    if name == "onnxruntime":
        from trtmake.backends.onnxruntime import OnnxruntimeBackend

        return OnnxruntimeBackend(), "backend=onnxruntime (asked for)"
    if name == "tensorrt":
        probe_ok, why = _probe_tensorrt()
        if not probe_ok:
            raise MissingDependency(
                f"backend=tensorrt: {why}; install TensorRT with pip install 'trtmake[tensorrt]' "
                "(CUDA 12) or 'trtmake[tensorrt-cu13]' (CUDA 13) on a machine with an NVIDIA GPU, "
                "or use backend=onnxruntime"
            )
        from trtmake.backends.tensorrt import TensorrtBackend

        return TensorrtBackend(), f"backend=tensorrt (asked for): {why}"
    probe_ok, why = _probe_tensorrt()
    if probe_ok:
        from trtmake.backends.tensorrt import TensorrtBackend

        return TensorrtBackend(), f"auto: {why}"
    from trtmake.backends.onnxruntime import OnnxruntimeBackend

    return OnnxruntimeBackend(), f"auto: onnxruntime CPU, since {why}"


def _probe_tensorrt() -> tuple[bool, str]:
    from importlib.util import find_spec

    if find_spec("tensorrt") is None:
        return False, "tensorrt is not installed"
    try:
        from trtmake.backends.tensorrt import probe
    except ImportError as exc:  # backend module not importable: report, do not crash
        return False, f"tensorrt backend unavailable ({exc})"
    return probe()
