"""Byte formats of the simulator: engine plans and timing caches.

Plan:  b"SIMTRT-PLAN\\0" + u32 header length + header JSON + the ONNX model (external data inlined).
The header holds the release that built it, the compute capability of the device it was built
on, I/O tensors (name, mode, dtype, shape), optimization profiles, the fused layers and the
build settings the engine reports (profiling verbosity, hardware compatibility level...).
Cache: b"SIMTRT-TCACHE\\0" + JSON {release, cc, entries}.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from .graph import Graph
from .inspector import fuse

PLAN_MAGIC = b"SIMTRT-PLAN\0"
CACHE_MAGIC = b"SIMTRT-TCACHE\0"


class FormatError(ValueError):
    pass


def header(release: str, cc: tuple[int, int], graph: Graph, profiles: list[dict[str, list]], fp16: bool,
           config: Any) -> dict[str, Any]:
    io = [{"name": t.name, "mode": "INPUT", "dtype": t.dtype, "shape": list(t.shape)} for t in graph.inputs]
    io += [{"name": t.name, "mode": "OUTPUT", "dtype": t.dtype, "shape": list(t.shape)} for t in graph.outputs]
    layers = fuse(graph, fp16=fp16)
    device_memory = []
    for p in profiles:
        device_memory.append(graph.intermediate_bytes({k: tuple(v[2]) for k, v in p.items()}))
    return {
        "release": release,
        "cc": list(cc),
        "io": io,
        "profiles": profiles,
        "fp16": fp16,
        "layers": [{"name": la.name, "type": la.engine_type, "inputs": la.inputs, "outputs": la.outputs,
                    "vectorized": la.vectorized} for la in layers],
        "profiling_verbosity": config.profiling_verbosity.name,
        "hardware_compatibility_level": config.hardware_compatibility_level.name,
        "version_compatible": bool("VERSION_COMPATIBLE" in type(config)._m.BuilderFlag.__members__ and
                                   config.get_flag(type(config)._m.BuilderFlag.VERSION_COMPATIBLE)),
        "device_memory": device_memory,
    }


def dump_plan(head: dict[str, Any], model: bytes) -> bytes:
    blob = json.dumps(head, sort_keys=True).encode()
    return PLAN_MAGIC + struct.pack("<I", len(blob)) + blob + model


def load_plan(data: bytes) -> tuple[dict[str, Any], bytes]:
    if not data.startswith(PLAN_MAGIC) or len(data) < len(PLAN_MAGIC) + 4:
        raise FormatError("Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match")
    start = len(PLAN_MAGIC) + 4
    (size,) = struct.unpack("<I", data[len(PLAN_MAGIC):start])
    try:
        head = json.loads(data[start:start + size])
    except ValueError as exc:
        raise FormatError(f"Serialization assertion failed: corrupt plan header ({exc})") from None
    return head, data[start + size:]


def dump_cache(release: str, cc: tuple[int, int], entries: dict[str, Any]) -> bytes:
    return CACHE_MAGIC + json.dumps({"release": release, "cc": list(cc), "entries": entries}, sort_keys=True).encode()


def load_cache(data: bytes) -> tuple[str, tuple[int, int], dict[str, Any]]:
    if not data.startswith(CACHE_MAGIC):
        raise FormatError("Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match")
    try:
        body = json.loads(data[len(CACHE_MAGIC):])
        return body["release"], tuple(body["cc"]), dict(body["entries"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"Serialization assertion failed: corrupt timing cache ({exc})") from None
