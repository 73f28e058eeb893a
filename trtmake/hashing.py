"""Digests: canonical JSON for config slices, sha256 for files, and a per-machine stat cache.

sha256 is the identity of everything in the cache (collision-resistant, safe for a cache
shared between machines). Measured here at ~1.8 GB/s; the stat cache makes the common case
(nothing changed) read no bytes at all: an entry (size, mtime_ns, inode) -> digest is trusted
while the file's stat matches, like git's index and DVC's state database.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

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


def digest_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


class StatCache:
    """(path, size, mtime_ns, inode) -> digest, persisted per machine inside the cache dir."""

    def __init__(self, file: Path | None):
        self.file = file
        self._entries: dict[str, list] | None = None
        self._dirty = False
        self.hashed_bytes = 0  # how many bytes this process actually read (for tests/benchmarks)

    @classmethod
    def for_cache_dir(cls, cache_dir: Path) -> "StatCache":
        return cls(cache_dir / "stat" / f"{socket.gethostname()}.json")

    def _load(self) -> dict[str, list]:
        if self._entries is None:
            self._entries = {}
            if self.file is not None:
                try:
                    data = json.loads(self.file.read_text())
                    if data.get("format") == 1:
                        self._entries = data["entries"]
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    self._entries = {}  # unreadable: start over, never crash
        return self._entries

    def digest(self, path: Path) -> str:
        path = Path(os.path.abspath(path))
        st = path.stat()
        sig = [st.st_size, st.st_mtime_ns, st.st_ino]
        entries = self._load()
        entry = entries.get(str(path))
        if entry is not None and entry[:3] == sig:
            return entry[3]
        digest = digest_file(path)
        self.hashed_bytes += st.st_size
        if time.time() - st.st_mtime_ns / 1e9 > RACY_SECONDS:
            entries[str(path)] = [*sig, digest]
            self._dirty = True
        else:
            entries.pop(str(path), None)
        return digest

    def save(self) -> None:
        if not self._dirty or self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.file, json.dumps({"format": 1, "entries": self._entries}))
            self._dirty = False
        except OSError:
            pass  # the stat cache is an optimisation; failing to save it costs a re-hash later
