"""The check a stage makes before it publishes a graph: onnxruntime creates a session on it
and, for the source, runs it once. What onnx.checker misses (type errors, a DequantizeLinear
with an axis its opset lacks) fails here, before anything reaches the cache."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def onnxruntime_refuses(path: Path, feeds: dict[str, np.ndarray] | None = None) -> str | None:
    """None when onnxruntime loads `path` (and runs `feeds` once, when given); else the first
    meaningful line of why not."""
    import onnxruntime as ort

    from trtmake.normalize import first_line

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return f"onnxruntime cannot load it: {first_line(exc)}"
    if feeds is None:
        return None
    try:
        session.run(None, feeds)
    except Exception as exc:
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in list(feeds.items())[:3])
        return f"onnxruntime cannot run it on {shapes}: {first_line(exc)}"
    return None
