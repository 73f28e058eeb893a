"""The build cache (DESIGN.md section 5).

    objects/<d[:2]>/<digest>     content-addressed, read-only files (engines, graphs, logs)
    actions/<key[:2]>/<key>.json one record per stage key: key components, output digests, data
    targets/<target_id>.json     the keys of each target's last successful run (status, explain)
    locks/<key>.lock             one lock per key: a key is built once, others wait and reuse
    tmp/                         work directories; published by rename into objects/

Readers never see partial files (temp + fsync + rename). An object is verified before it is
served (size, then the sha256 through the stat cache); a corrupt object or an unreadable record
is a cache miss, reported through `warnings`, never an error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from trtmake.atomic import write_text_atomic
from trtmake.errors import BuildFailed, UserError
from trtmake.hashing import StatCache, digest_file

RECORD_FORMAT = 1


class Cache:
    def __init__(self, root: Path, lock_timeout_s: float = 3600.0):
        self.root = Path(root)
        self.lock_timeout_s = lock_timeout_s
        self.stat = StatCache.for_cache_dir(self.root)
        self.warnings: list[str] = []

    # -- layout -----------------------------------------------------------------------------
    def ensure_writable(self) -> None:
        try:
            for sub in ("objects", "actions", "targets", "locks", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=True)
            probe.close()
        except OSError as exc:
            raise UserError(
                f"cache.dir: cannot write to {self.root} ({exc.strerror}); "
                "set cache.dir=PATH or TRTMAKE_CACHE to a writable folder"
            ) from None

    def object_path(self, digest: str) -> Path:
        return self.root / "objects" / digest[:2] / digest

    def action_path(self, key: str) -> Path:
        return self.root / "actions" / key[:2] / f"{key}.json"

    def pointer_path(self, target_id: str) -> Path:
        return self.root / "targets" / f"{target_id}.json"

    # -- objects ----------------------------------------------------------------------------
    def put_file(self, src: Path) -> dict[str, Any]:
        """Publish a file as an object; returns {"digest", "size"}. The source is consumed."""
        digest = digest_file(src)
        size = src.stat().st_size
        dst = self.object_path(digest)
        if not self.verify_object(digest, size, quiet=True):
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(src, 0o444)
            with open(src, "rb") as f:
                os.fsync(f.fileno())
            os.replace(src, dst)  # src lives in cache/tmp: same filesystem, atomic
        return {"digest": digest, "size": size}

    def verify_object(self, digest: str, size: int | None = None, quiet: bool = False) -> bool:
        path = self.object_path(digest)
        try:
            if size is not None and path.stat().st_size != size:
                raise _Corrupt("size differs from its record")
            if self.stat.digest(path) != digest:
                raise _Corrupt("content does not match its digest")
            return True
        except FileNotFoundError:
            if not quiet:
                self.warnings.append(f"cache object {digest[:12]} is missing: rebuilding")
            return False
        except _Corrupt as why:
            if not quiet:
                self.warnings.append(f"cache object {digest[:12]} is corrupt ({why}): rebuilding")
            self._discard(path)
            return False

    def _discard(self, path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    # -- action records ---------------------------------------------------------------------
    def get_action(self, key: str) -> dict[str, Any] | None:
        """The record for `key` if it and every object it names are intact, else None."""
        path = self.action_path(key)
        try:
            record = json.loads(path.read_text())
            if record.get("format") != RECORD_FORMAT or record.get("key") != key:
                raise ValueError("unknown format")
            outputs = record["outputs"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.warnings.append(f"action record {key[:12]} is unreadable: rebuilding")
            self._discard(path)
            return None
        for out in outputs.values():
            if not self.verify_object(out["digest"], out.get("size")):
                return None
        self._touch(path)
        return record

    def put_action(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        record = {"format": RECORD_FORMAT, "key": key, "created": time.time(), **record}
        write_text_atomic(self.action_path(key), json.dumps(record, indent=1, sort_keys=True))
        return record

    @staticmethod
    def _touch(path: Path) -> None:
        try:
            os.utime(path)  # last use, for gc's least-recently-used order
        except OSError:
            pass

    # -- target pointers --------------------------------------------------------------------
    def read_pointer(self, target_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.pointer_path(target_id).read_text())
        except (OSError, ValueError):
            return None

    def write_pointer(self, target_id: str, data: dict[str, Any]) -> None:
        write_text_atomic(self.pointer_path(target_id), json.dumps(data, indent=1, sort_keys=True))

    # -- locks and work directories ---------------------------------------------------------
    @contextmanager
    def lock(self, key: str, what: str) -> Iterator[None]:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.root / "locks" / f"{key}.lock"))
        try:
            lock.acquire(timeout=self.lock_timeout_s)
        except Timeout:
            raise BuildFailed(
                f"{what}: waited {self.lock_timeout_s:.0f} s for another trtmake process building "
                f"key {key[:12]} (lock {lock.lock_file}); raise cache.lock_timeout_s or stop it"
            ) from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def workdir(self, stage: str) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=self.root / "tmp"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


class _Corrupt(Exception):
    pass
