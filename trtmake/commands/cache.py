"""`trtmake cache push|pull|stats`: move records and their objects between the local cache and a
remote one (trtmake.remote). Each function takes a Cache, a Remote and the keys to move (None:
every record the source side holds) and returns its result as data; printing it is a reporter's
job, and choosing keys from targets is the CLI's.
"""

from __future__ import annotations

from typing import Any

from trtmake.cache import Cache
from trtmake.hashing import is_digest
from trtmake.remote import Remote


def local_keys(cache: Cache) -> list[str]:
    """Every key the local cache holds a record file for (intact or not: get_record decides)."""
    names = (p.name[:-5] for p in (cache.root / "actions").glob("*/*.json"))
    return sorted(n for n in names if is_digest(n))


def push(cache: Cache, remote: Remote, keys: list[str] | None = None) -> dict[str, Any]:
    """Upload each key's record and objects. A key without an intact local record is reported as
    missing; one the remote already holds, as present. Raises UserError (read-only remote) and
    RemoteFailed (the remote refused or cannot be reached)."""
    result: dict[str, Any] = {"pushed": [], "present": [], "missing": []}
    before = remote.stats.bytes_out
    for key in local_keys(cache) if keys is None else keys:
        record = cache.get_record(key)
        if record is None:
            result["missing"].append(key)
        elif remote.push(cache, key, record):
            result["pushed"].append(key)
        elif cache.get_record(key) is None:  # a local object failed verification while pushing
            result["missing"].append(key)
        else:
            result["present"].append(key)
    result["bytes_out"] = remote.stats.bytes_out - before
    return result


def pull(cache: Cache, remote: Remote, keys: list[str] | None = None) -> dict[str, Any]:
    """Download each key's record and objects unless the local cache already serves it. A key the
    remote lacks (or holds damaged: see cache.warnings) is reported as missing."""
    result: dict[str, Any] = {"fetched": [], "present": [], "missing": []}
    before = remote.stats.bytes_in
    for key in remote.keys() if keys is None else keys:
        if cache.get_record(key) is not None:
            result["present"].append(key)
        elif remote.fetch(cache, key) is not None:
            result["fetched"].append(key)
        else:
            result["missing"].append(key)
    result["bytes_in"] = remote.stats.bytes_in - before
    return result


def stats(cache: Cache, remote: Remote) -> dict[str, Any]:
    """The remote's contents against the local cache's, and what this process moved so far."""
    remote_keys = set(remote.keys())
    here = set(local_keys(cache))
    return {"url": remote.display, "mode": remote.mode, "writable": remote.writable,
            "remote": {"records": len(remote_keys), **remote.inventory()}, "local_records": len(here),
            "only_local": len(here - remote_keys), "only_remote": len(remote_keys - here),
            "session": remote.stats.as_dict()}
