"""A remote cache shared by a fleet: the local cache's records and objects, mirrored on any
fsspec URL (`s3://bucket/prefix`, `gs://`, `az://`, a local or NFS path, read-only `http(s)://`).

    <url>/objects/<d[:2]>/<digest>      the same content-addressed objects as the local cache
    <url>/actions/<key[:2]>/<key>.json  the same records, byte for byte (their "check" included)
    <url>/tmp/                          temporary names of uploads to filesystems (never on object stores)

It is safe by construction: a key holds the content digests of a stage's inputs and the
toolchain's fingerprint, and an object is named by its BLAKE3 digest, so a remote entry can only
be the result of the same work, and a damaged one is detected, never served:

- `fetch` reads the record first, checks its format, key and checksum, then downloads the
  objects it names, concurrently (one GET each, by the backend's own `get_file`), each into the
  local cache's tmp/; each is checked for its size and BLAKE3 digest (`Cache.put_file(expect=)`,
  hashing while it fsyncs, as a locally built object is) and only then published (a rename into
  objects/). The record is written locally last, and the local `Cache.get_record` has the final
  word. A missing, partial or corrupt remote entry, or a remote that cannot be reached, is a
  miss with a warning in `cache.warnings`.
- `push` uploads the objects first and the record last, so a reader never sees a record whose
  objects are missing, even if the pusher is killed between two uploads; the next push of the
  key uploads what is missing (an object already there with the right size is skipped). Each
  upload is atomic at its final name, so any number of runners may push the same key at once:
  they write equal bytes (or, for a record, an equally valid record whose objects are there).
  On object stores (S3, GCS, Azure Blob) one PUT, or one multipart upload, makes an object
  appear whole or not at all (S3 and GCS are strongly consistent), and they have no rename
  (a "move" is a server-side copy plus a delete: twice the work, with the temporary name
  visible meanwhile), so objects go straight to their final name. On filesystems (local, NFS,
  SFTP...) a write is visible while it happens, so uploads go to a temporary name in tmp/ and
  are renamed (local and NFS: `atomic.copy_atomic`, which also fsyncs). A killed multipart
  upload leaves no visible object (a bucket lifecycle rule aborts incomplete uploads); a killed
  copy to a filesystem leaves a file in tmp/, never at an object's name.

Credentials come the provider's standard way (AWS_* variables, a profile, an instance role;
GOOGLE_APPLICATION_CREDENTIALS; AZURE_STORAGE_*): trtmake never stores them, and a URL written
with user:password@ is shown redacted. fsspec and its backends are imported on first use.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from trtmake.atomic import copy_atomic, fault_point, write_text_atomic
from trtmake.cache import ActionRecord, Cache
from trtmake.errors import BuildFailed, CacheCorrupt, MissingDependency, UserError, first_line
from trtmake.hashing import is_digest
from trtmake.heavy import lazy_import
from trtmake.remote_url import (ATOMIC_PUT, EXTRAS, MODES, READ_ONLY_PROTOCOLS, listed_mtime, plain_options,
                                protocol_of, redact, secret_option)

futures = lazy_import("concurrent.futures")

MAX_RECORD_BYTES = 16 << 20  # a record is a few kB; anything this big is not one
FETCH_THREADS = 8  # the objects of one record are downloaded by up to this many threads


class RemoteFailed(BuildFailed):
    """The remote could not be reached or refused a request (network, credentials, permissions)."""


@dataclass
class RemoteStats:
    """What one Remote did in this process (for `stats` and the build summary)."""

    hits: int = 0  # records fetched (with all their objects)
    misses: int = 0  # records the remote lacked, or held damaged
    bytes_in: int = 0  # object bytes downloaded and found intact
    bytes_out: int = 0  # object and record bytes uploaded
    objects_pushed: int = 0
    objects_skipped: int = 0  # already on the remote with the right size
    records_pushed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def open_remote(url: str | None, mode: str = "read-write", options: dict[str, Any] | None = None) -> "Remote | None":
    """The Remote that `cache.remote` (url, mode, options) asks for, or None (no url, or mode off)."""
    if mode not in MODES:
        raise UserError(f"cache.remote.mode: '{mode}' is not one of {', '.join(MODES)}; "
                        "set cache.remote.mode=read-write, read-only or off")
    if not url or mode == "off":
        return None
    return Remote(url, mode, options)


class Remote:
    def __init__(self, url: str, mode: str = "read-write", options: dict[str, Any] | None = None):
        if mode not in ("read-write", "read-only"):
            raise UserError(f"cache.remote.mode: '{mode}' is not read-write or read-only; "
                            "set cache.remote.mode=read-write or read-only (off: no remote at all)")
        self.url = url
        self.display = redact(url)
        self.protocol = protocol_of(url)
        self.mode = mode
        # an http(s) remote is a read-only mirror (a static server): it is read whatever the mode
        self.writable = mode == "read-write" and self.protocol not in READ_ONLY_PROTOCOLS
        self.options = plain_options(options or {})
        secret = secret_option(self.options, "cache.remote.options")
        if secret:
            raise UserError(f"{secret}: credentials do not belong in the config (it is cached and reported); "
                            "remove it and use the provider's own way (AWS_* / GOOGLE_APPLICATION_CREDENTIALS / "
                            "AZURE_STORAGE_* variables, a profile, an instance role)")
        self.stats = RemoteStats()
        self.damaged: set[str] = set()  # object digests found damaged here: the next push replaces them
        self._fs = None
        self._root = ""

    def __repr__(self) -> str:  # never the credentials
        return f"Remote({self.display!r}, {self.mode!r})"

    # -- the filesystem, opened on first use --------------------------------------------------
    @property
    def fs(self):
        if self._fs is None:
            self._fs, self._root = self._open()
        return self._fs

    @property
    def root(self) -> str:
        self.fs
        return self._root

    def _open(self):
        try:
            from fsspec.core import url_to_fs
        except ImportError:
            raise MissingDependency(f"cache.remote.url: {self.display} needs fsspec: "
                                    f"pip install 'trtmake[{EXTRAS.get(self.protocol, 's3')}]'") from None
        try:
            fs, root = url_to_fs(self.url, **self.options)
        except ImportError:
            extra = EXTRAS.get(self.protocol)
            hint = f"pip install 'trtmake[{extra}]'" if extra else "install the fsspec backend for it"
            raise MissingDependency(f"cache.remote.url: {self.display} needs a package that is not "
                                    f"installed; {hint}") from None
        except (ValueError, TypeError) as exc:
            raise UserError(f"cache.remote.url: cannot open {self.display} ({self._say(exc)}); "
                            "use an fsspec URL such as s3://bucket/prefix or a folder path") from None
        root = root.rstrip("/")
        if self.protocol == "file":
            root = os.path.abspath(root)
        return fs, root

    @property
    def _local(self) -> bool:
        protocols = self.fs.protocol
        return "file" in (protocols if isinstance(protocols, (tuple, list)) else (protocols,))

    def object_path(self, digest: str) -> str:
        return f"{self.root}/objects/{digest[:2]}/{digest}"

    def action_path(self, key: str) -> str:
        return f"{self.root}/actions/{key[:2]}/{key}.json"

    def _say(self, exc: BaseException) -> str:
        """An exception's message on one line, with the URL's password (if any) removed."""
        return self._hide(first_line(exc, 200))

    def _hide(self, text: str) -> str:
        """`text` without the URL's password (an http(s) path holds the whole URL)."""
        secret = re.match(r"^[^:]*://[^/@:]*:([^/@]*)@", self.url)
        return text.replace(secret.group(1), "***") if secret and secret.group(1) else text

    def _call(self, what: str, call: Callable[[], Any], writing: bool = False) -> Any:
        """One request to the remote: FileNotFoundError passes through when reading (an absent
        entry); any other failure (network, credentials, permissions, a backend's own error, a
        write into a bucket that does not exist) -> RemoteFailed."""
        try:
            return call()
        except FileNotFoundError as exc:
            if writing:
                raise self._failed(what, f"{self._say(exc)}; does the bucket or folder exist?") from None
            raise
        except (UserError, RemoteFailed):
            raise
        except Exception as exc:  # every fsspec backend has its own exception types
            raise self._failed(what, self._say(exc)) from None

    def _failed(self, what: str, why: str) -> RemoteFailed:
        what = what.replace(f"{self._root}/", "")  # paths relative to the URL, which is said once
        return RemoteFailed(self._hide(f"remote cache {self.display}: {what} failed ({why})"))

    def _size(self, path: str) -> int | None:
        try:
            return int(self._call(f"stat {path}", lambda: self.fs.size(path)))
        except FileNotFoundError:
            return None

    # -- fetch ----------------------------------------------------------------------------------
    def fetch(self, cache: Cache, key: str) -> ActionRecord | None:
        """Copy the record for `key` and the objects it names into `cache`; the record as the
        local cache now serves it, or None (a miss: absent, damaged, or the remote unreachable,
        with a warning for the last two)."""
        if not is_digest(key):
            raise ValueError(f"not a stage key: {key!r}")
        self.fs.invalidate_cache()  # another runner may have pushed since this process listed
        try:
            found = self._read_record(key, cache.warnings)
            if found is None:
                self.stats.misses += 1
                return None
            raw, record = found
            # the objects of one record concurrently: a round trip each, and one object's hashing
            # and fsync overlap another's download
            wanted = sorted({o.digest: o.size for o in record.outputs.values()}.items())
            with futures.ThreadPoolExecutor(min(FETCH_THREADS, len(wanted)) or 1, "trtmake-fetch") as pool:
                got = list(pool.map(lambda item: self._fetch_object(cache, *item), wanted))
            self.stats.bytes_in += sum(n for n in got if n is not None)
            if None in got:
                self.stats.misses += 1
                return None
        except RemoteFailed as exc:
            cache.warnings.append(f"{exc}: treated as a miss")
            self.stats.misses += 1
            return None
        write_text_atomic(cache.action_path(key), raw.decode(), tmp_dir=cache.tmp_dir)  # byte for byte
        served = cache.get_record(key)  # the local cache's own checks have the final word
        if served is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return served

    def _read_record(self, key: str, warnings: list[str]) -> tuple[bytes, ActionRecord] | None:
        """The remote record of `key` (its bytes and what they say) when it is intact, else None."""
        path = self.action_path(key)
        try:
            raw = self._call(f"read {path}", lambda: self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        try:
            return raw, parse_record(raw, key)
        except ValueError as why:
            warnings.append(f"remote record {key[:12]} on {self.display} is unreadable ({why}): ignored")
            return None

    def _fetch_object(self, cache: Cache, digest: str, size: int) -> int | None:
        """Bring objects/<digest> into `cache`, verified: the bytes downloaded (0: it was already
        here), or None (missing or corrupt on the remote: a warning; nothing published)."""
        if cache.verify_object(digest, size, quiet=True):
            return 0  # already here, intact
        path = self.object_path(digest)
        cache.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".remote.", dir=cache.tmp_dir)
        os.close(fd)
        try:
            # one streamed GET per object (no HEAD first: on an object store every request is a round
            # trip), written by the backend itself (s3fs, gcsfs and adlfs each have their own fast
            # path); then size and BLAKE3 digest, before anything is published
            self._call(f"download {path}", lambda: self.fs.get_file(path, tmp))
            got = os.path.getsize(tmp)
            if got != size:
                raise CacheCorrupt(f"{got} bytes arrived, {size} expected")
            cache.put_file(Path(tmp), expect=digest)  # BLAKE3 while fsyncing, renamed into objects/ if it matches
            return got
        except CacheCorrupt as why:
            cache.warnings.append(f"remote object {digest[:12]} on {self.display} is corrupt ({why}): "
                                  "treated as a miss, not copied")
            self.damaged.add(digest)
            return None
        except FileNotFoundError:
            cache.warnings.append(f"remote object {digest[:12]} on {self.display} is missing: treated as a miss")
            self.damaged.add(digest)
            return None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # -- push -----------------------------------------------------------------------------------
    def push(self, cache: Cache, key: str, record: ActionRecord) -> bool:
        """Upload `record` (as the local cache holds it for `key`) and its objects: every missing
        object first (one already there with the right size is skipped), then the record unless
        the remote holds an intact one. True when anything was uploaded; False when all was there
        (or a local object turned out corrupt: a warning, nothing pushed). Raises RemoteFailed
        when the remote refuses, UserError in read-only mode."""
        if not self.writable:
            raise UserError(f"cache.remote.mode: {self.display} is read-only"
                            + (" (an http(s) remote)" if self.protocol in READ_ONLY_PROTOCOLS else "")
                            + "; set cache.remote.mode=read-write and a writable cache.remote.url to push")
        try:
            raw = cache.action_path(key).read_bytes()  # uploaded byte for byte
        except FileNotFoundError:
            raw = b""
        stored = _parsed(raw, key)  # equal outputs (its data went through JSON: tuples read back as lists)
        if record.key != key or stored is None or stored.outputs != record.outputs:
            raise ValueError(f"push: the record given for {key[:12]} is not the local cache's record for it")
        outputs = sorted(record.outputs.values())
        for out in outputs:  # never spread a corrupt local object
            if not cache.verify_object(out.digest, out.size, deep=True):
                cache.warnings.append(f"push {key[:12]}: local object {out.digest[:12]} failed verification; not pushed")
                return False
        self.fs.invalidate_cache()
        uploaded = False
        for out in outputs:  # also when the record is there: this repairs a remote that lost an object
            path = self.object_path(out.digest)
            if out.digest not in self.damaged and self._size(path) == out.size:
                self.stats.objects_skipped += 1
                continue
            self._upload(cache.object_path(out.digest), path)
            self.damaged.discard(out.digest)
            self.stats.objects_pushed += 1
            self.stats.bytes_out += out.size
            uploaded = True
            fault_point("remote:object-pushed")  # the crash tests kill the pusher here
        if self._read_record(key, cache.warnings) is not None:
            return uploaded  # another runner's record (its objects are there too) or our own
        with tempfile.TemporaryDirectory(prefix="push-", dir=cache.tmp_dir) as work:
            local = Path(work) / f"{key}.json"
            local.write_bytes(raw)
            self._upload(local, self.action_path(key))
        self.stats.records_pushed += 1
        self.stats.bytes_out += len(raw)
        return True

    def _upload(self, src: Path, path: str) -> None:
        """Make `path` hold `src`'s bytes, visible whole or not at all (see the module's docstring)."""
        assert self.writable, "a read-only remote never writes"
        if self._local:
            self._call(f"write {path}", lambda: copy_atomic(src, Path(path), tmp_dir=Path(self.root) / "tmp"), writing=True)
        elif self.protocol in ATOMIC_PUT:
            self._call(f"upload {path}", lambda: self.fs.put_file(str(src), path), writing=True)
        else:
            tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
            parent = path.rsplit("/", 1)[0]

            def move() -> None:
                self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)
                self.fs.makedirs(parent, exist_ok=True)
                self.fs.put_file(str(src), tmp)
                self.fs.mv(tmp, path)

            self._call(f"upload {path}", move, writing=True)

    # -- listing --------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Every key the remote holds a record for (one listing of actions/)."""
        self.fs.invalidate_cache()
        try:
            paths = self._call("list records", lambda: self.fs.find(f"{self.root}/actions"))
        except FileNotFoundError:
            return []
        names = (p.rsplit("/", 1)[-1] for p in paths)
        return sorted(n[:-5] for n in names if n.endswith(".json") and is_digest(n[:-5]))

    def inventory(self) -> dict[str, int]:
        """How many objects the remote holds and their bytes (one listing of objects/)."""
        objects = self.entries("objects")
        return {"objects": len(objects), "object_bytes": sum(size for size, _ in objects.values())}

    def entries(self, sub: str) -> dict[str, tuple[int, float]]:
        """Every record (`actions`, by key) or object (`objects`, by digest) on the remote, with its
        size and modification time (the upload's: object stores keep no access time)."""
        self.fs.invalidate_cache()
        try:
            found = self._call(f"list {sub}", lambda: self.fs.find(f"{self.root}/{sub}", detail=True))
        except FileNotFoundError:
            return {}
        out = {}
        for path, info in found.items():
            name = path.rsplit("/", 1)[-1].removesuffix(".json" if sub == "actions" else "")
            if is_digest(name):
                out[name] = (int(info.get("size") or 0), listed_mtime(info))
        return out

    def read_records(self, keys: list[str]) -> dict[str, ActionRecord | None]:
        """The remote records of `keys` (None: absent or not an intact record), read concurrently
        where the backend can (fsspec's cat of many paths)."""
        if not keys:
            return {}
        paths = {self.action_path(k): k for k in keys}
        found = self._call("read records", lambda: self.fs.cat(list(paths), on_error="return"))
        out: dict[str, ActionRecord | None] = {}
        for path, key in paths.items():
            raw = found.get(path)
            out[key] = _parsed(raw, key) if isinstance(raw, bytes) else None
        return out

    def remove(self, path: str) -> None:
        """Delete one entry (gc --remote); one already gone is fine."""
        assert self.writable, "a read-only remote never writes"
        try:
            self._call(f"delete {path}", lambda: self.fs.rm_file(path))
        except FileNotFoundError:
            pass


def parse_record(raw: bytes, key: str) -> ActionRecord:
    """The intact record for `key` in these bytes, read by the local cache's own parser
    (ActionRecord.from_json: format, key, checksum, outputs), every output with a size; else
    ValueError saying what is wrong."""
    if len(raw) > MAX_RECORD_BYTES:
        raise ValueError("too large")
    try:
        record = ActionRecord.from_json(raw, key)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("not JSON") from None
    if any(o.size is None or o.size < 0 for o in record.outputs.values()):
        raise ValueError("outputs")
    return record


def _parsed(raw: bytes, key: str) -> ActionRecord | None:
    try:
        return parse_record(raw, key)
    except ValueError:
        return None
