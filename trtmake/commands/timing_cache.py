"""`trtmake merge-timing-cache PINNED [PRODUCED ...] [cache.dir=PATH]`: the explicit command that
merges build-produced TensorRT timing caches into the pinned file.

Without PRODUCED files, every `timing_cache` output of a `build` action record in the cache is
merged, oldest first. The pinned file is an input of build keys: merging into it makes the
targets that pin it stale, as it should.
"""

from __future__ import annotations

from pathlib import Path

from trtmake import report
from trtmake.backends.tensorrt import merge_timing_caches
from trtmake.cache import Cache
from trtmake.cache_dir import resolve_cache_dir
from trtmake.errors import UserError


def main(argv: list[str], root: Path, console) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        raise UserError("merge-timing-cache: usage: trtmake merge-timing-cache PINNED_FILE [PRODUCED ...] "
                        "[cache.dir=PATH]")
    overrides = [a for a in argv if a.startswith("cache.dir=")]
    files = [Path(a).expanduser().absolute() for a in argv if a not in overrides]  # relative to the cwd
    if not files:
        raise UserError("merge-timing-cache: name the pinned timing cache file first")
    pinned, produced = files[0], files[1:]
    if not produced:
        cache = resolve_cache_dir(root, overrides)
        produced = produced_timing_caches(cache)
        if not produced:
            report.print_timing_merge({"pinned": str(pinned), "nothing": f"no build in {cache} produced a "
                                       "timing cache (only tensorrt builds do)"}, console)
            return 0
    elif overrides:
        raise UserError(f"{overrides[0]}: not a file; cache.dir=PATH only applies without PRODUCED files")

    report.print_timing_merge(merge_timing_caches(pinned, produced), console)
    return 0


def produced_timing_caches(cache: Path) -> list[Path]:
    """The timing caches that `build` records list as outputs (and that exist), oldest first."""
    store = Cache(cache)
    found: list[tuple[float, Path]] = []
    for _, record in store.iter_records():
        if record is None or record.stage != "build" or "timing_cache" not in record.outputs:
            continue
        obj = store.object_path(record.outputs["timing_cache"].digest)
        if obj.is_file() and obj not in (p for _, p in found):
            found.append((record.created, obj))
    return [p for _, p in sorted(found)]
