"""Timing cache as DESIGN.md section 3: the pinned file is an input, the produced cache an output,
and only `merge_timing_caches` (an explicit command) writes the pinned file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from trtmake.atomic import write_bytes_atomic
from trtmake.backends.tensorrt.toolchain import import_tensorrt, make_logger
from trtmake.errors import UserError


def attach_timing_cache(trt: Any, config: Any, pinned: Path | None) -> tuple[Any, str]:
    """Give the builder config a timing cache: the pinned file's bytes, or an empty cache.

    Returns (cache, status) with status "empty", "pinned", or "pinned-mismatch" (the pinned
    cache was made on another device or TensorRT release; the build starts from empty).
    The pinned file is only read.
    """
    data = _read(pinned, "backend.tensorrt.timing_cache") if pinned is not None else b""
    cache = config.create_timing_cache(data)
    if config.set_timing_cache(cache, False):  # ignore_mismatch=False
        return cache, "pinned" if pinned is not None else "empty"
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    return cache, "pinned-mismatch"


def merge_timing_caches(pinned: Path, produced: list[Path]) -> dict[str, Any]:
    """Combine build-produced timing caches into the pinned file (ITimingCache.combine).

    Written atomically (temp file + os.replace) and only when the bytes change; caches from
    another device or release are rejected by TensorRT and listed as such.
    """
    pinned, produced = Path(pinned), [Path(p) for p in produced]
    blobs = [(p, _read(p, "timing cache")) for p in produced]  # all readable before any write
    trt = import_tensorrt()
    logger, lines = make_logger(trt)
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    before = pinned.read_bytes() if pinned.exists() else b""
    base = config.create_timing_cache(before)
    merged, rejected = [], []
    for path, data in blobs:
        other = config.create_timing_cache(data)
        (merged if base.combine(other, False) else rejected).append(str(path))
    after = bytes(base.serialize())
    changed = after != before
    if changed:
        write_bytes_atomic(pinned, after)
    return {
        "pinned": str(pinned),
        "merged": merged,
        "rejected": rejected,
        "changed": changed,
        "sha256_before": hashlib.sha256(before).hexdigest() if before else None,
        "sha256_after": hashlib.sha256(after).hexdigest(),
        "bytes": len(after),
        "log": "\n".join(lines),
    }


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what}: {path} does not exist; fix the path or drop the key") from None
    except OSError as exc:
        raise UserError(f"{what}: {path} cannot be read ({exc.strerror})") from None
