"""`trtmake cache push|pull|stats` and `trtmake gc --remote`: move records and their objects
between the local cache and a remote one (trtmake.remote), and shrink the remote.

    trtmake cache push [target=NAME|PATTERN[,...]] [-m] [--json] [key=value ...]
    trtmake cache pull [target=NAME|PATTERN[,...]] [-m] [--json] [key=value ...]
    trtmake cache stats [--json]

With targets, each target's remote is the `cache.remote` its composed config holds, the one a
build of it uses (its recipe's, else TRTMAKE_REMOTE; the command line's overrides on top);
without, `cache.remote.url=URL` (else TRTMAKE_REMOTE), `cache.remote.mode=MODE` and
`cache.remote.options.KEY=VALUE` on the command line. Targets are chosen as `status` chooses
them (trtmake.planner.Planner). push sends the keys of the targets' last runs (their pointers,
cache/targets/<id>.json); pull walks each target's stages as `explain` does and fetches every
stage missing here, so that the next stage's key can be computed. Without a target: every
record the source side holds. Each function returns data; report.py prints it.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from trtmake import report
from trtmake.cache import Cache
from trtmake.cache_dir import resolve_cache_dir
from trtmake.commands.status import select_targets
from trtmake.errors import UserError
from trtmake.executor import RemoteUse, run_target
from trtmake.hashing import is_digest
from trtmake.planner import Planner
from trtmake.remote import Remote, open_remote

ENV = "TRTMAKE_REMOTE"
ORPHAN_GRACE_S = 3600.0  # a remote object no record names may be a push in progress (records go last)
USAGE = ("usage: trtmake cache push|pull [target=NAME|PATTERN[,...]] [-m] [--json] [key=value ...]\n"
         "       trtmake cache stats [--json]\n"
         "  with cache.remote.url=URL (or TRTMAKE_REMOTE), cache.remote.mode=MODE, cache.remote.options.KEY=VALUE, "
         "cache.dir=PATH")


def main(argv: list[str], root: Path, console) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        console.print(USAGE, markup=False, highlight=False)
        return 0
    verb, argv = argv[0], argv[1:]
    if verb not in ("push", "pull", "stats"):
        raise UserError(f"cache {verb}: not a cache command; use push, pull or stats ({USAGE.splitlines()[0]})")
    flags = {a for a in argv if a.startswith("-")}
    if flags - {"--json", "-m", "--multirun"}:
        raise UserError(f"cache {verb}: unknown option {sorted(flags - {'--json', '-m', '--multirun'})[0]}; "
                        f"{USAGE.splitlines()[0]}")
    overrides = [a for a in argv if not a.startswith("-")]
    patterns = [o.split("=", 1)[1] for o in overrides if o.startswith("target=")]
    overrides = [o for o in overrides if not o.startswith("target=")]
    cache = Cache(resolve_cache_dir(root, overrides))
    if verb == "stats":
        if patterns:
            raise UserError("cache stats: takes no target (it counts the whole cache and the remote)")
        result = stats(cache, remote_for(overrides, "cache stats"))
    else:
        cache.ensure_writable()
        if patterns:
            result = for_targets(verb, root, patterns, overrides, cache)
        else:
            remote = remote_for(overrides, f"cache {verb}")
            result = push(cache, remote) if verb == "push" else pull(cache, remote)
    result["warnings"] = [*result.get("warnings", []), *cache.warnings]
    report.print_remote(verb, result, console, as_json="--json" in flags)
    return 0


def remote_settings(overrides: list[str]) -> dict[str, Any]:
    """cache.remote as the command line gives it: the last `cache.remote.url=` (else TRTMAKE_REMOTE),
    `cache.remote.mode=`, and `cache.remote.options.A.B=V` (V read as JSON where it parses, else a string)."""
    url, mode, options = os.environ.get(ENV) or None, "read-write", {}
    for o in overrides:
        name, _, value = o.lstrip("+").partition("=")
        if name == "cache.remote.url":
            url = value or None
        elif name == "cache.remote.mode":
            mode = value
        elif name.startswith("cache.remote.options."):
            *path, last = name.removeprefix("cache.remote.options.").split(".")
            node = options
            for part in path:
                node = node.setdefault(part, {})
            try:
                node[last] = json.loads(value)
            except ValueError:
                node[last] = value
    return {"url": url, "mode": mode, "options": options}


def remote_for(overrides: list[str], what: str) -> Remote:
    return _opened(remote_settings(overrides), what)


def _opened(settings: dict[str, Any], what: str) -> Remote:
    remote = open_remote(**settings)
    if remote is None:
        raise UserError(f"{what}: no remote cache; pass cache.remote.url=URL (e.g. s3://bucket/prefix) "
                        f"or export {ENV}=URL, or set cache.remote.url in the target's recipe "
                        "(and cache.remote.mode is not off)")
    return remote


def for_targets(verb: str, root: Path, patterns: list[str], overrides: list[str], cache: Cache) -> dict[str, Any]:
    """push or pull each chosen target through the remote its composed config names (cache.remote
    from its recipe, the command line or TRTMAKE_REMOTE); targets naming the same remote share one."""
    result: dict[str, Any] = {"warnings": []}
    remotes: dict[str, Remote] = {}
    done: set[str] = set()  # a key two targets share (their source stage) is pushed once
    with ExitStack() as hydra_scope:
        plans = Planner(root, hydra_scope)
        for name in select_targets(root, patterns):
            target = plans.target([f"target={name}", *overrides])
            settings = target["cache"]["remote"]
            same = json.dumps(settings, sort_keys=True, default=str)
            if same not in remotes:
                remotes[same] = _opened(settings, f"cache {verb} target={target.name}")
            if verb == "push":
                keys = [k for k in target_keys(target, cache) if k not in done]
                done.update(keys)
                part = push(cache, remotes[same], keys)
            else:
                part = pull_target(target, remotes[same])
            for field, value in part.items():
                result[field] = result.get(field, 0 if isinstance(value, int) else []) + value
    return result


def target_keys(target, cache: Cache) -> list[str]:
    """The keys of a target's last run, from its pointer (a target never built here has none:
    nothing to push for it)."""
    pointer = cache.read_pointer(target.target_id)
    if pointer is None:
        cache.warnings.append(f"target={target.label}: no last run in {cache.root}; build it first")
        return []
    return list(dict.fromkeys(s["key"] for s in pointer["stages"].values() if is_digest(s.get("key"))))


def pull_target(target, remote: Remote) -> dict[str, Any]:
    """The target's stages, checked as `explain` checks them, a stage missing here fetched from
    the remote (validate's host-bound record only with validation.trust_remote)."""
    result: dict[str, Any] = {"fetched": [], "present": [], "missing": []}
    before = remote.stats.bytes_in
    run = run_target(target, explain=True, pull=RemoteUse(remote))
    for s in run.stages:
        kind = {"fetched": "fetched", "up to date": "present"}.get(s.status, "missing")
        result[kind].append(s.key or f"{target.label}/{s.name}")
    result["warnings"] = run.warnings + ([f"target={target.label}: {run.error}"] if run.error else [])
    result["bytes_in"] = remote.stats.bytes_in - before
    return result


def local_keys(cache: Cache) -> list[str]:
    """Every key the local cache holds a record file for (intact or not: get_record decides)."""
    return sorted(path.stem for path, _ in cache.iter_records() if is_digest(path.stem))


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
    objects = [p.stat().st_size for p in cache.iter_objects() if p.is_file()]
    return {"url": remote.display, "mode": remote.mode, "writable": remote.writable,
            "remote": {"records": len(remote_keys), **remote.inventory()},
            "local": {"records": len(here), "objects": len(objects), "object_bytes": sum(objects)},
            "local_records": len(here), "only_local": len(here - remote_keys), "only_remote": len(remote_keys - here),
            "session": remote.stats.as_dict()}


def plan_remote_gc(records: dict[str, tuple[int, float]], named: dict[str, set[str] | None],
                   objects: dict[str, tuple[int, float]], budget: int, now: float) -> tuple[list[str], list[str]]:
    """(records, objects) to delete so that the remote holds at most `budget` bytes: unreadable
    records, then intact ones oldest first by their upload time (object stores keep no access
    time), then every object no remaining record names (one younger than ORPHAN_GRACE_S and never
    named by a record may be a push in progress: kept). `named`: key -> the digests its record
    names (None: unreadable)."""
    users: dict[str, int] = {}
    for digests in named.values():
        for d in digests or ():
            users[d] = users.get(d, 0) + 1
    size = sum(s for s, _ in records.values()) + sum(s for s, _ in objects.values())
    drop_records: list[str] = []
    free_objects: set[str] = set()

    def drop(key: str) -> None:
        nonlocal size
        drop_records.append(key)
        size -= records[key][0]
        for d in named.get(key) or ():
            users[d] -= 1
            if not users[d] and d in objects:
                free_objects.add(d)
                size -= objects[d][0]

    for key in sorted(records, key=lambda k: records[k][1]):
        if named.get(key) is None:
            drop(key)
    orphans = {d for d, (_, mtime) in objects.items() if d not in users and now - mtime > ORPHAN_GRACE_S}
    size -= sum(objects[d][0] for d in orphans)
    for key in sorted(records, key=lambda k: (records[k][1], k)):
        if size <= budget:
            break
        if key not in drop_records:
            drop(key)
    return drop_records, sorted(free_objects | orphans)


def gc_remote(remote: Remote, budget: int, dry_run: bool, now: float | None = None) -> dict[str, Any]:
    """`trtmake gc --remote --max-size SIZE`: records are deleted before the objects they name, so
    a reader never finds a record whose objects are gone. Returns the summary gc prints."""
    if not remote.writable and not dry_run:
        raise UserError(f"gc --remote: {remote.display} is read-only; set cache.remote.mode=read-write "
                        "(or use --dry-run)")
    records, objects = remote.entries("actions"), remote.entries("objects")
    named = {k: (None if r is None else {o.digest for o in r.outputs.values()})
             for k, r in remote.read_records(sorted(records)).items()}
    drop_records, drop_objects = plan_remote_gc(records, named, objects, budget, time.time() if now is None else now)
    if not dry_run:
        for key in drop_records:
            remote.remove(remote.action_path(key))
        for digest in drop_objects:
            remote.remove(remote.object_path(digest))
    before = sum(s for s, _ in records.values()) + sum(s for s, _ in objects.values())
    removed = {"records": (len(drop_records), sum(records[k][0] for k in drop_records)),
               "objects": (len(drop_objects), sum(objects[d][0] for d in drop_objects))}
    freed = sum(size for _, size in removed.values())
    return {"command": "gc --remote", "cache": remote.display, "removed": {k: v for k, v in removed.items() if v[0]},
            "freed": freed, "before": before, "after": before - freed, "dry_run": dry_run, "budget": budget,
            "notes": []}
