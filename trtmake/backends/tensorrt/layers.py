"""Layer information: the engine inspector's JSON read into counts and per-layer precision.

Pure Python: takes the inspector's text, so it is tested on JSON without TensorRT. Both schemas:
- TensorRT 10.x: each layer tensor has one "Format/Datatype" string ("Row major linear FP32",
  "Thirty-two wide channel vectorized row major Int8 format"); the engine's I/O are "Bindings",
  a list of names.
- TensorRT 11.x: "Format" and "Datatype" are separate fields ("Row major linear" / "FP32");
  the I/O are "I/O Tensors", a list of objects with "Name".
With a profiling verbosity below DETAILED, "Layers" is a list of names only.

A layer's precision is what it computes in: its outputs' types, except that a layer reading a
quantized type (int8, fp8, int4, fp4) it does not write is a quantized layer too: a Q/DQ
convolution whose output is not re-quantized reads Int8 and writes Float, and runs in int8.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

# Words TensorRT uses for a tensor's type ("Row major linear FP32", "Half", "Float", "Int8"...)
# mapped to one precision name.
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
QUANTIZED = ("int8", "fp8", "int4", "fp4")


def precision_of(fmt: str) -> str | None:
    """Precision named in one type or "Format/Datatype" string, or None (dynamic, unknown)."""
    for pattern, name in _PRECISION_WORDS:
        match = pattern.search(fmt)
        if match:
            return name or match.group(0).lower()
    return None


def tensor_precision(tensor: Any) -> str | None:
    """Precision of one layer input/output entry, in either release's schema."""
    if not isinstance(tensor, dict):
        return None
    if "Format/Datatype" in tensor:  # 10.x
        return precision_of(str(tensor["Format/Datatype"]))
    for key in ("Datatype", "DataType"):  # 11.x
        if key in tensor:
            return precision_of(str(tensor[key]))
    return None


def layer_precision(inputs: list[str | None], outputs: list[str | None]) -> str | None:
    """"+"-joined precisions the layer computes in (see the module docstring)."""
    written = sorted({p for p in outputs if p})
    quantized_in = sorted({p for p in inputs if p in QUANTIZED} - set(written))
    known = quantized_in or written
    return "+".join(known) if known else None


def layer_entry(layer: Any) -> dict[str, Any]:
    """One inspector layer as {name, type, precision}; plain strings come from non-DETAILED builds."""
    if isinstance(layer, str):
        return {"name": layer, "type": None, "precision": None}
    inputs = [tensor_precision(t) for t in layer.get("Inputs", [])]
    outputs = [tensor_precision(t) for t in layer.get("Outputs", [])]
    return {"name": layer.get("Name"), "type": layer.get("LayerType"), "precision": layer_precision(inputs, outputs)}


def io_tensor_names(raw: dict[str, Any]) -> list[str]:
    """Engine I/O tensor names: 10.x "Bindings" (names) or 11.x "I/O Tensors" (objects)."""
    if isinstance(raw.get("Bindings"), list):
        return [str(b) for b in raw["Bindings"]]
    return [str(t.get("Name")) for t in raw.get("I/O Tensors", []) if isinstance(t, dict)]


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
        "io_tensors": io_tensor_names(raw) if isinstance(raw, dict) else [],
        "inspector": raw,
    }


def count_onnx_nodes(onnx_path: Path) -> int | None:
    """Nodes of the ONNX graph (top level), read without external data; None if unreadable."""
    import onnx

    try:
        return len(onnx.load(str(onnx_path), load_external_data=False).graph.node)
    except Exception:  # the parser reports unreadable files; the count is only informative
        return None
