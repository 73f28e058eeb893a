"""The build cache, and the one place that knows its layout.

    objects/<d[:2]>/<digest>     content-addressed, read-only files (engines, graphs, logs)
    actions/<key[:2]>/<key>.json one record per stage key: key components, output digests, data
    targets/<target_id>.json     the keys of each target's last successful run (status, explain)
    locks/<key>.lock             one lock per key: a key is built once, others wait and reuse
    tmp/                         work directories; published by rename into objects/
    stat/<host>.json             the stat cache of each machine (hashing.StatCache)
    plans/<k[:2]>/<k>.json       composed targets (plan_cache.py)
    runs/, sweeps/               Hydra's run and multirun folders (conf/config.yaml puts them here)

Readers never see partial files (temp + fsync + rename; temporary files live in tmp/ only).
An object is verified before it is served: a cache hit checks its size and its digest through
the stat cache; an object that is about to be read (a stage's input) or handed out (the engine
in the report) is re-hashed from its bytes, since a stat match cannot see bit rot. Records and
pointers carry a checksum of their own content. A corrupt object, a garbled record or pointer
is a cache miss, reported through `warnings`, never an error and never served.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from trtmake.atomic import fsync_dir, published_mode, write_text_atomic
from trtmake.errors import BuildFailed, CacheCorrupt, UserError
from trtmake.hashing import StatCache, digest_file, digest_json, is_digest, stat_signature

RECORD_FORMAT = 3  # 2: records and pointers carry a checksum ("check") of their content; 3: BLAKE3 objects
OBJECTS, ACTIONS, TARGETS, LOCKS, TMP, STAT, PLANS = "objects", "actions", "targets", "locks", "tmp", "stat", "plans"
RUN_FOLDERS = ("runs", "sweeps")

# OSErrors that mean "the cache's storage cannot take this write": a user error (exit 2).
_FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
         errno.EFBIG: "file size limit exceeded"}
_DENIED = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted", errno.ENOTDIR: "a path component is not a directory"}


class Cache:
    def __init__(self, root: Path, lock_timeout_s: float = 3600.0):
        self.root = Path(root)
        self.tmp_dir, self.locks_dir, self.plans_dir = self.root / TMP, self.root / LOCKS, self.root / PLANS
        self.run_dirs = [self.root / name for name in RUN_FOLDERS]
        self.lock_timeout_s = lock_timeout_s
        self.warnings: list[str] = []
        self.stat = StatCache(self.root / STAT / f"{socket.gethostname()}.json", tmp_dir=self.tmp_dir,
                              warn=self.warnings.append)
        # objects this Cache (one target run) wrote or re-hashed, by digest -> their stat then:
        # a later deep check in the same run does not read the bytes again
        self._hashed_here: dict[str, list[int]] = {}

    # -- layout -----------------------------------------------------------------------------
    def ensure_writable(self) -> None:
        try:
            for sub in (OBJECTS, ACTIONS, TARGETS, LOCKS, TMP):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
                if not os.access(self.root / sub, os.W_OK):  # also a read-only mount, even for root
                    read_only = os.statvfs(self.root / sub).f_flag & os.ST_RDONLY
                    raise OSError(errno.EROFS if read_only else errno.EACCES,
                                  "read-only file system" if read_only else "permission denied", str(self.root / sub))
            probe = tempfile.NamedTemporaryFile(dir=self.tmp_dir, delete=True)
            probe.close()
        except OSError as exc:
            raise UserError(
                f"cache.dir: cannot write to {exc.filename or self.root} ({exc.strerror}); "
                "set cache.dir=PATH or TRTMAKE_CACHE to a writable folder"
            ) from None

    def object_path(self, digest: str) -> Path:
        return self.root / OBJECTS / digest[:2] / digest

    def action_path(self, key: str) -> Path:
        return self.root / ACTIONS / key[:2] / f"{key}.json"

    def pointer_path(self, target_id: str) -> Path:
        return self.root / TARGETS / f"{target_id}.json"

    def iter_objects(self) -> Iterator[Path]:
        return (self.root / OBJECTS).glob("*/*")

    def iter_records(self) -> Iterator[tuple[Path, ActionRecord | None]]:
        """Every action record file, by path, with its record (None: unreadable or garbled).
        Only parsed: neither the objects it names are checked nor its last use touched."""
        for path in sorted((self.root / ACTIONS).glob("*/*.json")):
            try:
                yield path, ActionRecord.from_json(path.read_text(), path.stem)
            except (OSError, ValueError):
                yield path, None

    def iter_pointers(self) -> Iterator[tuple[str, Path, dict[str, Any] | None]]:
        """Every target pointer: (target id, path, its content or None when unreadable)."""
        for path in sorted((self.root / TARGETS).glob("*.json")):
            yield path.stem, path, self.read_pointer(path.stem)

    # -- objects ----------------------------------------------------------------------------
    def put_file(self, src: Path, expect: str | None = None) -> dict[str, Any]:
        """Publish a file as an object; returns {"digest", "size"}. The source is consumed.
        `expect`: the digest the bytes must have (a download); CacheCorrupt, and nothing is
        published, when they do not.

        The new file always replaces whatever is at the object's name: renaming equal bytes over
        an intact object changes nothing for readers (open files keep their inode), and it
        heals an object whose corruption the stat check could not see."""
        size = src.stat().st_size
        os.chmod(src, published_mode(0o444))  # read-only, readable as the umask allows
        with open(src, "rb") as f:
            digest = _digest_while_syncing(src, f.fileno(), size)
        if expect is not None and digest != expect:
            raise CacheCorrupt("content does not match its digest")
        dst = self.object_path(digest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)  # src lives in cache/tmp: same filesystem, atomic
        fsync_dir(dst.parent)
        self.stat.forget(dst)
        self._hashed_here[digest] = _sig(dst)
        return {"digest": digest, "size": size}

    def verify_object(self, digest: str, size: int | None = None, quiet: bool = False, deep: bool = False) -> bool:
        """True when objects/<digest> is intact. `deep` re-hashes the bytes, ignoring the stat
        cache (what readers do right before use). A corrupt object is removed. Bytes this Cache
        (one target run) already hashed are not read again while their stat is unchanged."""
        path = self.object_path(digest)
        try:
            if size is not None and path.stat().st_size != size:
                raise _Corrupt("size differs from its record")
            if self._hashed_here.get(digest) == _sig(path):
                return True
            actual = digest_file(path) if deep else self.stat.digest(path)
            if actual != digest:
                raise _Corrupt("content does not match its digest")
            if deep:
                self._hashed_here[digest] = _sig(path)
            return True
        except FileNotFoundError:
            if not quiet:
                self.warnings.append(f"cache object {digest[:12]} is missing: rebuilding")
            return False
        except _Corrupt as why:
            if not quiet:
                self.warnings.append(f"cache object {digest[:12]} is corrupt ({why}): rebuilding")
            self._discard(path)
            self.stat.forget(path)
            return False

    def verify_for_use(self, digests: list[str], what: str) -> None:
        """Re-hash cache objects right before they are read or handed out. Raises CacheCorrupt
        (the executor then reruns the target once, which rebuilds what was discarded)."""
        for digest in digests:
            if is_digest(digest) and self.object_path(digest).exists() and not self.verify_object(digest, deep=True):
                raise CacheCorrupt(f"{what}: cache object {digest[:12]} failed verification")

    def _discard(self, path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    # -- action records ---------------------------------------------------------------------
    def get_record(self, key: str) -> ActionRecord | None:
        """The record for `key` if it and every object it names are intact, else None."""
        path = self.action_path(key)
        try:
            record = ActionRecord.from_json(path.read_text(), key)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self.warnings.append(f"action record {key[:12]} is unreadable: rebuilding")
            self._discard(path)
            return None
        for out in record.outputs.values():
            if not self.verify_object(out.digest, out.size):
                return None
        self._touch(path)
        return record

    def put_action(self, record: ActionRecord) -> ActionRecord:
        """Publish `record` under its key, stamped with its creation time and this process's pid
        (with the host the executor records, they name the process that built the key)."""
        record = replace(record, created=time.time(), pid=os.getpid())
        write_text_atomic(self.action_path(record.key), record.to_json(),
                          tmp_dir=self.tmp_dir, fault=f"{record.stage or '?'}:record-partial")
        return record

    @staticmethod
    def _touch(path: Path) -> None:
        try:
            os.utime(path)  # last use, for gc's least-recently-used order
        except OSError:
            pass

    # -- target pointers --------------------------------------------------------------------
    def read_pointer(self, target_id: str) -> dict[str, Any] | None:
        """The target's last run ({"stages": {stage: {"key", "components"}}, ...}), or None."""
        path = self.pointer_path(target_id)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("check") != _check(data):
                raise ValueError("checksum")
            if not isinstance(data.get("stages"), dict):
                raise ValueError("stages")
            return data
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, AttributeError):
            self.warnings.append(f"target pointer {path.name} is unreadable: ignored (explain cannot diff this run)")
            return None

    def write_pointer(self, target_id: str, data: dict[str, Any]) -> None:
        data = {**data, "check": _check(data)}
        write_text_atomic(self.pointer_path(target_id), json.dumps(data, indent=1, sort_keys=True),
                          tmp_dir=self.tmp_dir, fault="pointer:partial")

    # -- locks and work directories ---------------------------------------------------------
    @contextmanager
    def lock(self, key: str, what: str) -> Iterator[None]:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.locks_dir / f"{key}.lock"))
        try:
            lock.acquire(timeout=self.lock_timeout_s)
        except Timeout:
            raise BuildFailed(
                f"{what}: waited {self.lock_timeout_s:g} s (cache.lock_timeout_s) for lock {lock.lock_file}, "
                f"held by another trtmake process building key {key[:12]}; wait for it, stop it, "
                "or raise cache.lock_timeout_s"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def storage_full(self, probe_bytes: int = 4 << 20) -> UserError | None:
        """After a stage failed: is it because the cache's disk is full? Writes (then removes) a
        probe file in tmp/, so a library that reports a failed write in its own words (onnxruntime:
        "Protobuf serialization failed") still ends as the one-line disk error, exit 2."""
        try:
            fd, probe = tempfile.mkstemp(prefix=".probe.", dir=self.tmp_dir)
        except OSError as exc:
            return storage_error(exc, self.root)
        try:
            with os.fdopen(fd, "wb") as f:
                chunk = b"\0" * (1 << 20)
                for _ in range(max(1, probe_bytes >> 20)):
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            return None
        except OSError as exc:
            exc.filename = None
            return storage_error(exc, self.root)
        finally:
            self._discard(Path(probe))

    @contextmanager
    def workdir(self, stage: str) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=self.tmp_dir))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


class Output(NamedTuple):
    digest: str
    size: int | None  # None: not recorded, not checked


@dataclass(frozen=True)
class ActionRecord:
    """One stage key's result, as `put_action` stored it: what went into the key, the objects
    it published (by output name) and the stage's data."""

    key: str
    outputs: dict[str, Output]
    stage: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    components: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    seconds: float = 0.0
    host: Any = None
    created: float = 0.0
    pid: int | None = None

    @classmethod
    def from_json(cls, text: str, key: str) -> ActionRecord:
        """The record stored for `key`; ValueError when it is not valid JSON, of another format
        or key, fails its checksum, or names an output that is not a digest (and a size)."""
        record = json.loads(text)
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("key") != key:
            raise ValueError("unknown format")
        if record.get("check") != _check(record):
            raise ValueError("checksum")
        try:
            outputs = {str(name): Output(out["digest"], out.get("size")) for name, out in record["outputs"].items()}
            fields = {k: record[k] for k in _RECORD_FIELDS if k in record}
            if not all(is_digest(o.digest) and isinstance(o.size, (int, type(None))) for o in outputs.values()):
                raise ValueError("output")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"outputs: {exc}") from None
        if not all(isinstance(fields.get(k, {}), dict) for k in ("data", "components")):
            raise ValueError("data")
        return cls(key=key, outputs=outputs, **fields)

    def to_json(self) -> str:
        """The record as `from_json` reads it back: its format, key and checksum included."""
        outputs = {name: {"digest": o.digest, **({} if o.size is None else {"size": o.size})}
                   for name, o in self.outputs.items()}
        body = {"format": RECORD_FORMAT, "key": self.key, "outputs": outputs,
                **{k: getattr(self, k) for k in _RECORD_FIELDS}}
        return json.dumps({**body, "check": _check(body)}, indent=1, sort_keys=True)


_RECORD_FIELDS = ("stage", "data", "components", "target", "seconds", "host", "created", "pid")


OVERLAP_MIN_BYTES = 8 << 20


def _digest_while_syncing(path: Path, fd: int, size: int) -> str:
    """The file's digest, computed while its bytes are flushed to disk (fsync before it is
    published). Both release the GIL, so on a large object the disk write and the hashing
    overlap (put_file of a 100 MB engine here: 0.110 s -> 0.066 s with sha256, 0.070 s -> 0.047 s
    with BLAKE3 read from the page cache). Small files are done one after the other: a
    thread costs more than it saves there."""
    if size < OVERLAP_MIN_BYTES:
        os.fsync(fd)
        return digest_file(path)

    failed: list[OSError] = []

    def sync() -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            failed.append(exc)

    syncing = threading.Thread(target=sync, name="trtmake-fsync")
    syncing.start()
    digest = digest_file(path)
    syncing.join()
    if failed:  # an fsync error (EIO, ENOSPC) surfaces here, before anything is published
        raise failed[0]
    return digest


def _sig(path: Path) -> list[int]:
    return stat_signature(path.stat())


class _Corrupt(Exception):
    pass


def _check(record: dict[str, Any]) -> str:
    """Checksum of a record's content (without its own "check" field)."""
    return digest_json({k: v for k, v in record.items() if k != "check"})


def storage_error(exc: OSError, root: Path | None) -> UserError | None:
    """A full or unwritable disk -> a one-line UserError (exit 2), else None. With `root` (the
    cache dir), "unwritable" counts only for paths under it; without (the CLI, before a config
    exists), any path: Hydra creates its run dir under cache.dir before trtmake runs."""
    if exc.errno in _FULL:
        writing = f"writing {exc.filename}" if exc.filename else f"writing under {root or 'the cache'}"
        return UserError(f"cache.dir: {_FULL[exc.errno]} while {writing}; free space there "
                         "(trtmake gc) or set cache.dir=PATH to a bigger disk")
    where = exc.filename or root
    if exc.errno in _DENIED and where is not None and (root is None or _under(Path(str(where)), root)):
        return UserError(f"cache.dir: cannot write {where} ({_DENIED[exc.errno]}); "
                         "set cache.dir=PATH or TRTMAKE_CACHE to a writable folder")
    return None


def _under(path: Path, root: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
        return True
    except ValueError:
        return False
