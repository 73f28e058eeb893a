"""Digests: sha256 of canonical JSON for keys and checksums, BLAKE3 for files, and a per-machine
stat cache.

A file's BLAKE3 digest (256 bits) is the identity of everything in the cache: models, data,
engines, every object. It has to be collision-resistant (objects are named by it in a cache
shared between machines, so xxh3 is out) and fast, because a new or edited model is read whole.
Measured here (2 cores, 100 MB in the page cache): sha256 1.6 GB/s (OpenSSL), BLAKE3 7.8 GB/s
memory-mapped on both cores (a file at rest) and 3.3 GB/s read in chunks (a file that may still
be being written; see `digest_file`); in memory blake2b ~1 GB/s, xxh3 21 GB/s. Keys and record
checksums hash a few kilobytes of JSON, where sha256 from the standard library costs nothing.
The stat cache makes the common case (nothing changed) read no bytes at all: an entry (size,
mtime_ns, inode) -> digest is trusted while the file's stat matches, like git's index and DVC's
state database.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from blake3 import blake3

from trtmake.atomic import write_text_atomic

CHUNK = 1 << 20
RACY_SECONDS = 2.0  # a file modified this recently is re-hashed next time (git's "racy" rule)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, floats in repr form: equal configs give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_json(value: Any) -> str:
    return digest_bytes(canonical_json(value).encode())


MMAP_MIN_BYTES = 1 << 20


def digest_file(path: Path) -> str:
    """BLAKE3 of a file's bytes (64 hex characters), with the GIL released. A large file at rest
    is memory-mapped and hashed on every core (7.8 GB/s here for 100 MB, against 3.3 GB/s read in
    chunks); a small one, one that cannot be mapped, and one modified within RACY_SECONDS (it may
    still be being written: a mapped file truncated under its reader kills the reader with SIGBUS,
    a read file only gives a digest that the next run recomputes) are read."""

    if mappable(path):
        try:
            return blake3(max_threads=blake3.AUTO).update_mmap(str(path)).hexdigest()
        except (OSError, ValueError):  # a filesystem without mmap: read it instead
            pass
    h = blake3()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def at_rest(st: os.stat_result) -> bool:
    """Not modified within RACY_SECONDS: its digest may be remembered, its bytes may be mapped."""
    return time.time() - st.st_mtime_ns / 1e9 > RACY_SECONDS


def mappable(path: Path) -> bool:
    st = os.stat(path)
    return st.st_size >= MMAP_MIN_BYTES and at_rest(st)


class StatCache:
    """(path, size, mtime_ns, inode) -> digest, persisted per machine inside the cache dir.

    The file carries a checksum of its entries: a garbled file (even one that is still valid
    JSON, such as an entry pointing at another model's digest) is dropped whole and every file
    is re-hashed, never trusted. Stat trust cannot see an edit that keeps size, mtime and inode
    (bit rot, `os.utime` back): the cache therefore re-hashes its own objects before use
    (`Cache.verify_object(deep=True)`); for users' files it is the same trade-off git makes.
    """

    FORMAT = 3  # 3: BLAKE3 file digests (2 held sha256 ones)

    def __init__(self, file: Path | None, tmp_dir: Path | None = None, warn: Callable[[str], None] | None = None):
        self.file = file
        self.tmp_dir = tmp_dir
        self.warn = warn or (lambda message: None)
        self._entries: dict[str, list] | None = None
        self._dirty = False
        self.hashed_bytes = 0  # how many bytes this process actually read (for tests/benchmarks)

    def _load(self) -> dict[str, list]:
        if self._entries is None:
            self._entries = {}
            if self.file is not None:
                try:
                    data = json.loads(self.file.read_text())
                    entries = data["entries"]
                    if data.get("format") != self.FORMAT or data.get("check") != _entries_check(entries):
                        raise ValueError("checksum")
                    if not all(_valid_entry(e) for e in entries.values()):
                        raise ValueError("entry")
                    self._entries = entries
                except FileNotFoundError:
                    pass
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    self._entries = {}  # unreadable or garbled: start over (re-hash), never crash
                    self.warn(f"stat cache {self.file.name} is unreadable: dropped, files are re-hashed")
        return self._entries

    def digest(self, path: Path) -> str:
        path = Path(os.path.abspath(path))
        st = path.stat()
        sig = stat_signature(st)
        entries = self._load()
        entry = entries.get(str(path))
        if entry is not None and entry[:3] == sig:
            return entry[3]
        digest = digest_file(path)
        self.hashed_bytes += st.st_size
        if at_rest(st):
            entries[str(path)] = [*sig, digest]
            self._dirty = True
        elif entries.pop(str(path), None) is not None:
            self._dirty = True
        return digest

    def forget(self, path: Path) -> None:
        """Drop a path's entry (its file was found corrupt or removed)."""
        if self._load().pop(os.path.abspath(path), None) is not None:
            self._dirty = True

    def save(self) -> None:
        if not self._dirty or self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"format": self.FORMAT, "check": _entries_check(self._entries), "entries": self._entries})
            write_text_atomic(self.file, text, tmp_dir=self.tmp_dir, fault="stat:partial")
            self._dirty = False
        except OSError:
            pass  # the stat cache is an optimisation; failing to save it costs a re-hash later


def stat_signature(st: os.stat_result) -> list[int]:
    """What stat-based trust compares (stat cache, plan cache, a run's own hashes): size,
    mtime_ns, inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _entries_check(entries: Any) -> str:
    return digest_json(entries)


def _valid_entry(entry: Any) -> bool:
    return (isinstance(entry, list) and len(entry) == 4 and all(isinstance(v, int) for v in entry[:3])
            and is_digest(entry[3]))


def is_digest(value: Any) -> bool:
    """A 256-bit hex digest (BLAKE3 of a file, sha256 of a key): 64 lowercase hex characters (also
    keeps object paths inside the cache)."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
