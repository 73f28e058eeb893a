"""Publish files atomically: write to a temporary name, fsync, rename; and the fault hook.

A reader sees either the old file or the whole new one, never a part, even if the writer is
killed (kill -9) at any instruction: the temporary file is only ever renamed once complete.
`tmp_dir` (same filesystem as the destination) keeps temporary files out of the destination's
folder, so a killed writer leaves its litter in one place (the cache's tmp/), never next to
the files readers look up by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from fnmatch import fnmatchcase
from pathlib import Path

FAULT_ENV = "TRTMAKE_FAULT"


def fault_point(name: str) -> None:
    """Fault injection for the crash tests: SIGKILL this process at the named point when
    TRTMAKE_FAULT matches it (a glob, e.g. `build:published` or `*:record-partial`).

    Points: `<stage>:locked` (key lock held, nothing run), `<stage>:ran` (outputs written in the
    work dir, nothing published), `<stage>:published` (objects renamed into objects/, no action
    record yet), `<stage>:record-partial` (half of the record's temporary file written),
    `<stage>:recorded` (record published, target pointer not yet), `pointer:partial`,
    `stat:partial`. Costs one environment lookup when unset.
    """
    spec = os.environ.get(FAULT_ENV)
    if spec and fnmatchcase(name, spec):
        os.kill(os.getpid(), signal.SIGKILL)


def current_umask() -> int:
    """The process umask, read without changing it where Linux says it (/proc/self/status);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def published_mode(mode: int = 0o666) -> int:
    """The mode a file created with `mode` gets under the umask, as open(2) would give it: a
    temporary file from mkstemp is 0600 whatever the umask, and a published file must not be."""
    return mode & ~current_umask()


def _tmp_for(path: Path, tmp_dir: Path | None) -> tuple[int, str]:
    folder = tmp_dir if tmp_dir is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, published_mode())
    except BaseException:
        os.close(fd)
        _unlink_quiet(tmp)
        raise
    return fd, tmp


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a power cut after it cannot undo it). Best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, tmp_dir: Path | None = None, fault: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _tmp_for(path, tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            if fault:
                half = len(data) // 2
                f.write(data[:half])
                f.flush()
                fault_point(fault)  # killed here: a half-written temporary file, never renamed
                f.write(data[half:])
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str, tmp_dir: Path | None = None, fault: str | None = None) -> None:
    write_bytes_atomic(path, text.encode(), tmp_dir=tmp_dir, fault=fault)


def copy_atomic(src: Path, dst: Path, tmp_dir: Path | None = None) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _tmp_for(dst, tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    fsync_dir(dst.parent)


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
