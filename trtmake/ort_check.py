"""Graph checks made with onnxruntime's loader: reference outputs always come from onnxruntime,
so a graph it refuses is a user error, found before anything reaches the cache.

- `onnxruntime_rejects`: whether the installed onnxruntime loads a model stamped with an IR
  version and opset at all (a model from the future, an old onnxruntime).
- `onnxruntime_refuses`: the check a stage makes before it publishes a graph: onnxruntime creates
  a session on it and, for the source, runs it once. What onnx.checker misses (type errors, a
  DequantizeLinear with an axis its opset lacks) fails here."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from trtmake.errors import first_line

if TYPE_CHECKING:
    import numpy as np


def onnxruntime_refuses(path: Path, feeds: dict[str, np.ndarray] | None = None) -> str | None:
    """None when onnxruntime loads `path` (and runs `feeds` once, when given); else the first
    meaningful line of why not."""
    import onnxruntime as ort

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


@lru_cache(maxsize=None)
def onnxruntime_rejects(ir_version: int, opset: int) -> str | None:
    """Why onnxruntime refuses a model stamped (ir_version, opset), or None: loads a one-node
    Identity model with the same stamps (a few ms, once per pair and process)."""
    if ir_version <= 0 or opset <= 0:
        return None  # unstamped: let the loader and the checker speak

    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "opset_probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return None
    except Exception as exc:
        text = " ".join(str(exc).split())
    version = metadata.version("onnxruntime")
    m = re.search(r"support for domain ai\.onnx is till opset (\d+)", text)
    if m:
        return f"onnxruntime {version} supports ai.onnx opsets up to {m.group(1)}"
    m = re.search(r"max supported IR version: (\d+)", text)
    if m:
        return f"onnxruntime {version} supports IR versions up to {m.group(1)}"
    return f"onnxruntime {version} refuses it ({text[-200:]})"
