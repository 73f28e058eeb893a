"""`trtmake gc` (shrink the cache to a size budget) and `trtmake clean target=NAME`.

The cache's reference graph (the layout is trtmake/cache.py's):
    targets/<id>.json  --keys-->  actions/<key>.json  --outputs-->  objects/<digest>
An object is needed while a record names it; a record is live while a target's last-run
pointer names it. `gc` removes records least recently used first (get_record touches a record
whose result is served) and then the objects no remaining record names; live records stay
unless `--all`. Unreadable records, objects no record names (older than an hour: a build may
be publishing one right now) and work directories left by crashed builds (older than a day)
are garbage and always go; so do Hydra's run and multirun folders (runs/, sweeps/) untouched
for a day, and every one of them with `--all`. A target pointer that names a record gc removes
goes with it, so `status` says the target must be built, not that its result is corrupt.
Planning is a pure function of a scanned inventory; nothing is removed in --dry-run.

A build that runs during gc and finds one of its records gone rebuilds it (a cache miss).
`gc --remote` shrinks the remote cache instead (trtmake.commands.cache.gc_remote); without
`--remote`, gc never deletes anything on a remote.
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtmake import report
from trtmake.cache import Cache
from trtmake.cache_dir import resolve_cache_dir
from trtmake.commands import cache as cmd_cache
from trtmake.errors import UserError
from trtmake.project import target_names

ORPHAN_GRACE_S = 3600.0
TMP_GRACE_S = 86400.0
PLAN_GRACE_S = 7 * 86400.0  # composed targets (cache/plans): cheap to compose again
RUN_GRACE_S = 86400.0  # Hydra's run/multirun folders: logs and a finished sweep's per-job results
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


# -- inventory ----------------------------------------------------------------------------------
@dataclass
class Record:
    key: str
    path: Path
    size: int
    mtime: float
    outputs: dict[str, int] = field(default_factory=dict)  # digest -> size
    target: str | None = None
    readable: bool = True


@dataclass
class Inventory:
    root: Path
    records: dict[str, Record] = field(default_factory=dict)
    objects: dict[str, tuple[Path, int, float]] = field(default_factory=dict)  # digest -> path, size, mtime
    pointers: dict[str, tuple[Path, int, set[str], str]] = field(default_factory=dict)  # id -> path, size, keys, name
    tmp: list[tuple[Path, int, float]] = field(default_factory=list)
    plans: list[tuple[Path, int, float]] = field(default_factory=list)  # path, size, mtime
    runs: list[tuple[Path, int, float]] = field(default_factory=list)  # a Hydra output folder, size, newest mtime

    @property
    def size(self) -> int:
        return (sum(r.size for r in self.records.values()) + sum(o[1] for o in self.objects.values())
                + sum(p[1] for p in self.pointers.values()) + sum(t[1] for t in self.tmp)
                + sum(p[1] for p in self.plans) + sum(r[1] for r in self.runs))

    def live_keys(self, skip: set[str] = frozenset()) -> set[str]:
        return {k for pid, p in self.pointers.items() if pid not in skip for k in p[2]}


def scan(root: Path) -> Inventory:
    inv = Inventory(Path(root))
    cache = Cache(inv.root)
    for path, record in cache.iter_records():
        st = _stat(path)
        if st is None:
            continue
        rec = Record(path.stem, path, st.st_size, st.st_mtime, readable=record is not None)
        if record is not None:
            rec.outputs = {o.digest: o.size or 0 for o in record.outputs.values()}
            rec.target = record.target
        inv.records[rec.key] = rec
    for path in cache.iter_objects():
        st = _stat(path)
        if st is not None and path.is_file():
            inv.objects[path.name] = (path, st.st_size, st.st_mtime)
    for target_id, path, pointer in cache.iter_pointers():
        st = _stat(path)
        if st is None:
            continue
        data = pointer or {}  # an unreadable pointer protects nothing
        try:
            keys = {s["key"] for s in data.get("stages", {}).values()}
        except (KeyError, TypeError, AttributeError):
            keys = set()
        inv.pointers[target_id] = (path, st.st_size, keys, data.get("name") or target_id)
    for path in cache.tmp_dir.glob("*"):
        st = _stat(path)
        if st is not None:
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else st.st_size
            inv.tmp.append((path, size, st.st_mtime))
    for path in cache.plans_dir.glob("*/*.json"):
        st = _stat(path)
        if st is not None:
            inv.plans.append((path, st.st_size, st.st_mtime))
    for folder in cache.run_dirs:
        for path in folder.glob("*"):
            found = _folder_stat(path)
            if found is not None:
                inv.runs.append((path, *found))
    return inv


def _folder_stat(path: Path) -> tuple[int, float] | None:
    """Bytes under a folder and the newest mtime in it (a running sweep keeps adding files)."""
    st = _stat(path)
    if st is None:
        return None
    size, newest = st.st_size if not path.is_dir() else 0, st.st_mtime
    for f in path.rglob("*") if path.is_dir() else ():
        fst = _stat(f)
        if fst is not None:
            newest = max(newest, fst.st_mtime)
            size += fst.st_size if f.is_file() else 0
    return size, newest


def _stat(path: Path):
    try:
        return path.stat()
    except OSError:
        return None


# -- plans --------------------------------------------------------------------------------------
@dataclass
class Plan:
    records: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    pointers: list[str] = field(default_factory=list)
    tmp: list[Path] = field(default_factory=list)
    plans: list[Path] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Refs:
    """Reference counts of objects by the records still kept."""

    def __init__(self, inv: Inventory):
        self.inv = inv
        self.count: dict[str, int] = {}
        for rec in inv.records.values():
            for d in rec.outputs:
                self.count[d] = self.count.get(d, 0) + 1

    def drop(self, rec: Record) -> list[str]:
        """Forget a record; the objects nothing names any more (and that exist)."""
        freed = []
        for d in rec.outputs:
            self.count[d] -= 1
            if self.count[d] == 0 and d in self.inv.objects:
                freed.append(d)
        return freed


def plan_gc(inv: Inventory, budget: int, include_live: bool, now: float | None = None) -> Plan:
    now = time.time() if now is None else now
    plan, refs = Plan(), _Refs(inv)
    size = inv.size
    for path, bytes_, mtime in inv.tmp:
        if now - mtime > TMP_GRACE_S:
            plan.tmp.append(path)
            size -= bytes_
    for path, bytes_, mtime in inv.plans:  # stored a week ago or more, or everything with --all
        if include_live or now - mtime > PLAN_GRACE_S:
            plan.plans.append(path)
            size -= bytes_
    for path, bytes_, mtime in inv.runs:  # untouched for a day, or everything with --all
        if include_live or now - mtime > RUN_GRACE_S:
            plan.runs.append(path)
            size -= bytes_
    for rec in inv.records.values():
        if not rec.readable:
            plan.records.append(rec.key)
            size -= rec.size
    for digest, (_, bytes_, mtime) in inv.objects.items():
        if digest not in refs.count and now - mtime > ORPHAN_GRACE_S:
            plan.objects.append(digest)
            size -= bytes_
    live = inv.live_keys()
    candidates = sorted((r for r in inv.records.values() if r.readable and (include_live or r.key not in live)),
                        key=lambda r: (r.key in live, r.mtime))  # unneeded first, then least recently used
    for rec in candidates:
        if size <= budget:
            break
        plan.records.append(rec.key)
        size -= rec.size
        for digest in refs.drop(rec):
            plan.objects.append(digest)
            size -= inv.objects[digest][1]
    if size > budget and not include_live:
        plan.notes.append(f"still over budget: the rest is needed by the last run of {len(inv.pointers)} "
                          "target(s) (cache/targets/*.json); `--all` removes those too, or `clean target=NAME`")
    plan.pointers = _dangling_pointers(inv, set(plan.records))
    return plan


def _dangling_pointers(inv: Inventory, removed: set[str]) -> list[str]:
    """Pointers that name a record being removed: a target whose last run is gone has no last run."""
    return sorted(pid for pid, (_, _, keys, _) in inv.pointers.items() if keys & removed)


def plan_clean(inv: Inventory, names: list[str]) -> Plan:
    ids = {_target_id(n) for n in names}
    plan, refs = Plan(), _Refs(inv)
    others = inv.live_keys(skip=ids)
    mine = {k for pid in ids if pid in inv.pointers for k in inv.pointers[pid][2]}
    mine |= {r.key for r in inv.records.values() if r.target in names}
    for key in sorted(mine - others):
        if key in inv.records:
            plan.records.append(key)
            plan.objects += refs.drop(inv.records[key])
    plan.pointers = sorted(pid for pid in ids if pid in inv.pointers)
    shared = len(mine & others)
    if shared:
        plan.notes.append(f"kept {shared} record(s) that other targets' last runs also use")
    return plan


def _target_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)  # as Target.target_id


# -- apply --------------------------------------------------------------------------------------
def apply(inv: Inventory, plan: Plan, dry_run: bool) -> dict[str, Any]:
    removed = {"records": [0, 0], "objects": [0, 0], "pointers": [0, 0], "tmp": [0, 0], "plans": [0, 0],
               "runs": [0, 0]}

    def rm(kind: str, path: Path, size: int) -> None:
        if not dry_run:
            try:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            except FileNotFoundError:
                return  # already gone (another gc, or a build discarding it)
            except OSError:
                return
        removed[kind][0] += 1
        removed[kind][1] += size

    # records first: a reader that finds a record always finds its objects, or rebuilds
    for key in plan.records:
        rec = inv.records[key]
        rm("records", rec.path, rec.size)
    for pid in plan.pointers:
        rm("pointers", inv.pointers[pid][0], inv.pointers[pid][1])
    for digest in plan.objects:
        path, size, _ = inv.objects[digest]
        rm("objects", path, size)
    for path in plan.tmp:
        rm("tmp", path, next(t[1] for t in inv.tmp if t[0] == path))
    for path in plan.plans:
        rm("plans", path, next(p[1] for p in inv.plans if p[0] == path))
    for path in plan.runs:
        rm("runs", path, next(r[1] for r in inv.runs if r[0] == path))
    freed = sum(v[1] for v in removed.values())
    return {"cache": str(inv.root), "removed": {k: tuple(v) for k, v in removed.items() if v[0]},
            "freed": freed, "before": inv.size, "after": inv.size - freed, "dry_run": dry_run,
            "notes": plan.notes}


# -- commands -----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        raise UserError(f"{self.prog}: {message}; see `trtmake {self.prog.split()[-1]} --help`")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # --help: printed, then done
        raise _Done()

    def parse(self, argv: list[str]) -> argparse.Namespace | None:
        """The arguments, or None when --help printed the usage (nothing else to do)."""
        try:
            return self.parse_intermixed_args(argv)
        except _Done:
            return None


class _Done(Exception):
    """argparse finished the command itself (--help printed the usage)."""


def gc_main(argv: list[str], root: Path, console) -> int:
    p = _Parser(prog="trtmake gc", description="Shrink the cache to a size budget, least recently used first.")
    p.add_argument("--max-size", required=True, help="budget, e.g. 10GB, 500MB, 2GiB, 0")
    p.add_argument("--all", action="store_true", help="may also remove what targets' last runs need")
    p.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    p.add_argument("--remote", action="store_true",
                   help="shrink the remote cache (cache.remote.url=URL or TRTMAKE_REMOTE), not the local one")
    p.add_argument("overrides", nargs="*", help="cache.dir=PATH (--remote: cache.remote.url=, .mode=, .options.K=V)")
    args = p.parse(argv)
    if args is None:
        return 0
    budget = parse_size(args.max_size)
    if args.remote:  # the remote only: gc never deletes a remote object without --remote
        if args.all:
            raise UserError("gc --remote: --all does not apply (the remote keeps no target pointers)")
        for o in args.overrides:
            if not o.lstrip("+").startswith("cache.remote."):
                raise UserError(f"{o}: not understood with --remote; only cache.remote.url=, .mode= and .options.KEY=")
        summary = cmd_cache.gc_remote(cmd_cache.remote_for(args.overrides, "gc --remote"), budget, args.dry_run)
        report.print_cache_removal(summary, console)
        return 0
    cache = resolve_cache_dir(root, _cache_dir_only(args.overrides))
    inv = scan(cache)
    summary = apply(inv, plan_gc(inv, budget, args.all), args.dry_run)
    summary.update(command="gc", budget=budget, protected=_protected(inv, summary, args.all))
    report.print_cache_removal(summary, console)
    return 0


def clean_main(argv: list[str], root: Path, console) -> int:
    p = _Parser(prog="trtmake clean", description="Remove a target's last run and the results only it uses.")
    p.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    p.add_argument("overrides", nargs="*", help="target=NAME[,NAME] cache.dir=PATH")
    args = p.parse(argv)
    if args is None:
        return 0
    names = [n for o in args.overrides if o.startswith("target=") for n in o.split("=", 1)[1].split(",") if n]
    if not names:
        raise UserError("clean: which target? pass target=NAME (or target=A,B)")
    cache = resolve_cache_dir(root, _cache_dir_only([o for o in args.overrides if not o.startswith("target=")]))
    inv = scan(cache)
    recipes = target_names(root)
    for name in names:
        if name not in recipes and _target_id(name) not in inv.pointers:
            raise UserError(f"target={name}: no such recipe in engine_recipes/target/ and no last run in {cache}; "
                            f"available: {', '.join(recipes)}")
    summary = apply(inv, plan_clean(inv, names), args.dry_run)
    summary.update(command=f"clean {','.join(names)}")
    report.print_cache_removal(summary, console)
    return 0


def _protected(inv: Inventory, summary: dict[str, Any], include_live: bool) -> tuple[int, int] | None:
    if include_live:
        return None
    live = [inv.records[k] for k in inv.live_keys() if k in inv.records]
    digests = {d for r in live for d in r.outputs if d in inv.objects}
    return len(live), sum(r.size for r in live) + sum(inv.objects[d][1] for d in digests)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else None
    if not m or unit not in _UNITS:
        raise UserError(f"--max-size {text}: not a size; use e.g. 10GB, 500MB, 2GiB or a number of bytes")
    return int(float(m.group(1)) * _UNITS[unit])


def _cache_dir_only(overrides: list[str]) -> list[str]:
    for o in overrides:
        if not o.startswith("cache.dir="):
            raise UserError(f"{o}: not understood here; only cache.dir=PATH (or target=NAME for clean)")
    return overrides
