"""FP16 graph conversion: float tensors become float16, I/O types kept, listed ops/nodes in FP32.

Uses onnxruntime's converter (onnxruntime.transformers.float16), which needs no extra package.
The converter's default op block list is always applied; `op_block_list` adds to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.errors import BuildFailed


def convert_fp16(src: Path, dst: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    op_block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(cfg.get("op_block_list") or []))
    node_block = list(cfg.get("node_block_list") or [])
    try:
        converted = convert_float_to_float16(
            model, keep_io_types=bool(cfg.get("keep_io_types", True)),
            op_block_list=op_block, node_block_list=node_block, disable_shape_infer=False)
    except Exception as exc:
        raise BuildFailed(f"precision=fp16: conversion of {src.name} failed: {exc}") from None
    onnx.save(converted, str(dst))
    kept = [n.name for n in converted.graph.node if n.op_type in op_block or n.name in node_block]
    casts = sum(1 for n in converted.graph.node if n.op_type == "Cast")
    return {"mode": "fp16", "nodes": len(converted.graph.node), "casts_inserted": casts,
            "kept_fp32_nodes": len(kept), "keep_io_types": bool(cfg.get("keep_io_types", True))}
