"""The timing cache: the pinned file is an input of the build key, the cache a build produced is
an output, and only `merge_timing_caches` (an explicit command) writes the pinned file.

A pinned cache is loaded by the rule trtexec uses (`buildTimingCacheFromFile` in TensorRT's
samples): a cache TensorRT cannot read (another release) is not used; one made on another device
is used with ignore_mismatch. The build notes either case, so the engine trtmake builds and the
one `show=trtexec` prints the command for start from the same cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from trtmake.atomic import write_bytes_atomic
from trtmake.backends.tensorrt.toolchain import capture_log, import_tensorrt, trt_logger
from trtmake.errors import BuildFailed, UserError


def attach_timing_cache(config: Any, pinned: Path | None) -> tuple[str, str]:
    """Give the builder config a timing cache: the pinned file's, or an empty one.

    Returns (status, note): status "empty", "pinned", "pinned-other-device" (used, made on another
    device) or "pinned-unreadable" (not used: another TensorRT release); note is "" or a log line.
    The pinned file is only read.
    """
    if pinned is not None:
        data = read_cache_file(pinned, "backend.tensorrt.timing_cache")
        cache = create_timing_cache(config, data)
        if cache is not None:
            if config.set_timing_cache(cache, False):
                return "pinned", ""
            if config.set_timing_cache(cache, True):
                return "pinned-other-device", (f"pinned timing cache {pinned} was made on another device; "
                                               "used with ignore_mismatch, as trtexec does")
        status, note = "pinned-unreadable", (f"pinned timing cache {pinned} cannot be read by this TensorRT "
                                             "release; built from an empty cache")
    else:
        status, note = "empty", ""
    empty = create_timing_cache(config, b"")
    if empty is None or not config.set_timing_cache(empty, False):
        raise BuildFailed("TensorRT could not create an empty timing cache")
    return status, note


def create_timing_cache(config: Any, data: bytes) -> Any:
    """An ITimingCache from serialized bytes, or None where TensorRT cannot read them (it returns
    None, or raises, for a cache of another release or a damaged one)."""
    try:
        return config.create_timing_cache(data)
    except (RuntimeError, ValueError):
        return None


def serialize_timing_cache(config: Any) -> bytes:
    """The builder config's timing cache as bytes (what the build produced)."""
    cache = config.get_timing_cache()
    if cache is None:
        raise BuildFailed("TensorRT returned no timing cache after the build")
    return bytes(cache.serialize())


def merge_timing_caches(pinned: Path, produced: list[Path]) -> dict[str, Any]:
    """Combine build-produced timing caches into the pinned file (ITimingCache.combine).

    Written atomically and only when the bytes change; caches from another device or release are
    rejected (not combined) and listed as such. Nothing is written when nothing was merged.
    """
    pinned, produced = Path(pinned), [Path(p) for p in produced]
    blobs = [(p, read_cache_file(p, "timing cache")) for p in produced]  # all readable before any write
    trt = import_tensorrt()
    with capture_log() as lines:
        builder = trt.Builder(trt_logger())
        config = builder.create_builder_config()
        before = pinned.read_bytes() if pinned.exists() else b""
        base = create_timing_cache(config, before)
        if base is None:
            raise UserError(f"timing cache {pinned} cannot be read by TensorRT {trt.__version__}; "
                            "move it away to start a new one")
        merged, rejected = [], []
        for path, data in blobs:
            other = create_timing_cache(config, data)
            ok = other is not None and base.combine(other, False)
            (merged if ok else rejected).append(str(path))
        after = bytes(base.serialize()) if merged else before
    changed = bool(merged) and after != before
    if changed:
        write_bytes_atomic(pinned, after)
    return {
        "pinned": str(pinned),
        "merged": merged,
        "rejected": rejected,
        "changed": changed,
        "sha256_before": hashlib.sha256(before).hexdigest() if before else None,
        "sha256_after": hashlib.sha256(after).hexdigest() if after else None,
        "bytes": len(after),
        "log": "\n".join(lines),
    }


def read_cache_file(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what}: {path} does not exist; fix the path or drop the key") from None
    except OSError as exc:
        raise UserError(f"{what}: {path} cannot be read ({exc.strerror})") from None
