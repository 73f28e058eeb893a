"""Layer information: the engine inspector's JSON read into counts and per-layer precision.

Pure Python: takes the inspector's text, so it is tested on recorded JSON without TensorRT.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

# Words TensorRT uses in "Format/Datatype" ("Row major linear FP32", "Thirty-two wide channel
# vectorized row major Int8 format.", "Half", "Float") mapped to one precision name.
_PRECISION_WORDS = (
    (re.compile(r"\bu?int8\b", re.I), None),  # resolved below: UInt8 vs Int8
    (re.compile(r"\b(fp16|half)\b", re.I), "fp16"),
    (re.compile(r"\b(bf16|bfloat16)\b", re.I), "bf16"),
    (re.compile(r"\b(fp32|float)\b", re.I), "fp32"),
    (re.compile(r"\bfp8\b", re.I), "fp8"),
    (re.compile(r"\bfp4\b", re.I), "fp4"),
    (re.compile(r"\bint4\b", re.I), "int4"),
    (re.compile(r"\bint32\b", re.I), "int32"),
    (re.compile(r"\bint64\b", re.I), "int64"),
    (re.compile(r"\bbool\b", re.I), "bool"),
)


def precision_of(fmt: str) -> str | None:
    """Precision named in one tensor's "Format/Datatype" string, or None (dynamic, unknown)."""
    for pattern, name in _PRECISION_WORDS:
        match = pattern.search(fmt)
        if match:
            return name or match.group(0).lower()
    return None


def layer_entry(layer: Any) -> dict[str, Any]:
    """One inspector layer as {name, type, precision}; plain strings come from non-DETAILED builds."""
    if isinstance(layer, str):
        return {"name": layer, "type": None, "precision": None}
    outputs = [precision_of(str(t.get("Format/Datatype", ""))) for t in layer.get("Outputs", [])
               if isinstance(t, dict)]
    known = sorted({p for p in outputs if p})
    return {
        "name": layer.get("Name"),
        "type": layer.get("LayerType"),
        "precision": "+".join(known) if known else None,
    }


def layer_info(inspector_json: str, layers_before: int | None) -> dict[str, Any]:
    """BuildResult.layer_info for TensorRT: counts before/after fusion and per-layer precision."""
    try:
        raw: Any = json.loads(inspector_json)
    except (TypeError, ValueError):
        raw = inspector_json  # kept verbatim; counts below stay empty
    layers = raw.get("Layers", []) if isinstance(raw, dict) else []
    entries = [layer_entry(layer) for layer in layers]
    return {
        "layers_before": layers_before,
        "layers_after": len(entries),
        "layers": entries,
        "precisions": dict(sorted(Counter(e["precision"] or "unknown" for e in entries).items())),
        "inspector": raw,
    }


def count_onnx_nodes(onnx_path: Path) -> int | None:
    """Nodes of the ONNX graph (top level), read without external data; None if unreadable."""
    import onnx

    try:
        return len(onnx.load(str(onnx_path), load_external_data=False).graph.node)
    except Exception:  # the parser reports unreadable files; the count is only informative
        return None
