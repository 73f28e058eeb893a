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
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from trtmake import report
from trtmake.cache import Cache
from trtmake.cache_dir import resolve_cache_dir
from trtmake.commands import cache as cmd_cache
from trtmake.errors import UserError
from trtmake.project import target_id, target_names

ORPHAN_GRACE_S = 3600.0
# what goes by age alone: work directories (a build may still use a fresh one), composed targets
# (cache/plans: cheap to compose again; all of them with --all) and Hydra's run/multirun folders
# (logs and a finished sweep's per-job results; all of them with --all)
AGED_GRACE_S = {"tmp": 86400.0, "plans": 7 * 86400.0, "runs": 86400.0}
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


# -- inventory ----------------------------------------------------------------------------------
class Entry(NamedTuple):
    """A file or folder in the cache: its bytes and its mtime."""

    path: Path
    size: int
    mtime: float


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
    objects: dict[str, Entry] = field(default_factory=dict)  # by digest
    pointers: dict[str, tuple[Entry, set[str]]] = field(default_factory=dict)  # by target id: file, keys it names
    aged: dict[str, list[Entry]] = field(default_factory=lambda: {kind: [] for kind in AGED_GRACE_S})

    @property
    def size(self) -> int:
        entries = [*self.objects.values(), *(p for p, _ in self.pointers.values()), *chain(*self.aged.values())]
        return sum(r.size for r in self.records.values()) + sum(e.size for e in entries)

    def live_keys(self, skip: set[str] = frozenset()) -> set[str]:
        return {k for pid, (_, keys) in self.pointers.items() if pid not in skip for k in keys}


def scan(root: Path) -> Inventory:
    inv = Inventory(Path(root))
    cache = Cache(inv.root)
    for path, record in cache.iter_records():
        entry = _entry(path)
        if entry is None:
            continue
        rec = Record(path.stem, path, entry.size, entry.mtime, readable=record is not None)
        if record is not None:
            rec.outputs = {o.digest: o.size or 0 for o in record.outputs.values()}
            rec.target = record.target
        inv.records[rec.key] = rec
    for path in cache.iter_objects():
        entry = _entry(path)
        if entry is not None and path.is_file():
            inv.objects[path.name] = entry
    for pid, path, pointer in cache.iter_pointers():
        entry = _entry(path)
        if entry is None:
            continue
        try:  # an unreadable pointer protects nothing
            keys = {s["key"] for s in (pointer or {}).get("stages", {}).values()}
        except (KeyError, TypeError, AttributeError):
            keys = set()
        inv.pointers[pid] = (entry, keys)
    aged = {"tmp": cache.tmp_dir.glob("*"), "plans": cache.plans_dir.glob("*/*.json"),
            "runs": chain(*(folder.glob("*") for folder in cache.run_dirs))}
    for kind, paths in aged.items():
        for path in paths:
            entry = _entry(path, newest=kind == "runs")  # a running sweep keeps adding files
            if entry is not None:
                inv.aged[kind].append(entry)
    return inv


def _entry(path: Path, newest: bool = False) -> Entry | None:
    """The bytes of a file, or of every file under a folder, and its mtime (with `newest`: the
    newest mtime under it); None when it is gone."""
    st = _stat(path)
    if st is None:
        return None
    size, mtime = 0 if path.is_dir() else st.st_size, st.st_mtime
    for f in path.rglob("*") if path.is_dir() else ():
        fst = _stat(f)
        if fst is not None:
            mtime = max(mtime, fst.st_mtime) if newest else mtime
            size += fst.st_size if f.is_file() else 0
    return Entry(path, size, mtime)


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
    aged: list[tuple[str, Entry]] = field(default_factory=list)  # (kind, entry): tmp, plans, runs
    notes: list[str] = field(default_factory=list)


def _references(inv: Inventory) -> Counter:
    """How many records name each object."""
    return Counter(d for rec in inv.records.values() for d in rec.outputs)


def _drop(refs: Counter, rec: Record, inv: Inventory) -> list[str]:
    """Forget a record; the objects nothing names any more (and that exist)."""
    refs.subtract(rec.outputs.keys())
    return [d for d in rec.outputs if refs[d] == 0 and d in inv.objects]


def plan_gc(inv: Inventory, budget: int, include_live: bool, now: float | None = None) -> Plan:
    now = time.time() if now is None else now
    plan, refs = Plan(), _references(inv)
    size = inv.size
    for kind, entries in inv.aged.items():
        for entry in entries:  # old enough, or with --all every plan and run folder (not tmp: in use)
            if now - entry.mtime > AGED_GRACE_S[kind] or (include_live and kind != "tmp"):
                plan.aged.append((kind, entry))
                size -= entry.size
    for rec in inv.records.values():
        if not rec.readable:
            plan.records.append(rec.key)
            size -= rec.size
    for digest, entry in inv.objects.items():
        if digest not in refs and now - entry.mtime > ORPHAN_GRACE_S:
            plan.objects.append(digest)
            size -= entry.size
    live = inv.live_keys()
    candidates = sorted((r for r in inv.records.values() if r.readable and (include_live or r.key not in live)),
                        key=lambda r: (r.key in live, r.mtime))  # unneeded first, then least recently used
    for rec in candidates:
        if size <= budget:
            break
        plan.records.append(rec.key)
        size -= rec.size
        for digest in _drop(refs, rec, inv):
            plan.objects.append(digest)
            size -= inv.objects[digest].size
    if size > budget and not include_live:
        plan.notes.append(f"still over budget: the rest is needed by the last run of {len(inv.pointers)} "
                          "target(s) (cache/targets/*.json); `--all` removes those too, or `clean target=NAME`")
    # a pointer that names a removed record goes too: a target whose last run is gone has no last run
    removed = set(plan.records)
    plan.pointers = sorted(pid for pid, (_, keys) in inv.pointers.items() if keys & removed)
    return plan


def plan_clean(inv: Inventory, names: list[str]) -> Plan:
    ids = {target_id(n) for n in names}
    plan, refs = Plan(), _references(inv)
    others = inv.live_keys(skip=ids)
    mine = {k for pid in ids if pid in inv.pointers for k in inv.pointers[pid][1]}
    mine |= {r.key for r in inv.records.values() if r.target in names}
    for key in sorted(mine - others):
        if key in inv.records:
            plan.records.append(key)
            plan.objects += _drop(refs, inv.records[key], inv)
    plan.pointers = sorted(pid for pid in ids if pid in inv.pointers)
    shared = len(mine & others)
    if shared:
        plan.notes.append(f"kept {shared} record(s) that other targets' last runs also use")
    return plan


# -- apply --------------------------------------------------------------------------------------
def apply(inv: Inventory, plan: Plan, dry_run: bool) -> dict[str, Any]:
    removed = {kind: [0, 0] for kind in ("records", "objects", "pointers", *AGED_GRACE_S)}

    def rm(kind: str, path: Path, size: int) -> None:
        if not dry_run:
            try:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            except OSError:
                return  # already gone (another gc, or a build discarding it), or not removable
        removed[kind][0] += 1
        removed[kind][1] += size

    # records first: a reader that finds a record always finds its objects, or rebuilds
    for key in plan.records:
        rm("records", inv.records[key].path, inv.records[key].size)
    for pid in plan.pointers:
        rm("pointers", inv.pointers[pid][0].path, inv.pointers[pid][0].size)
    for digest in plan.objects:
        rm("objects", inv.objects[digest].path, inv.objects[digest].size)
    for kind, entry in plan.aged:
        rm(kind, entry.path, entry.size)
    freed = sum(v[1] for v in removed.values())
    return {"cache": str(inv.root), "removed": {k: tuple(v) for k, v in removed.items() if v[0]},
            "freed": freed, "before": inv.size, "after": inv.size - freed, "dry_run": dry_run,
            "notes": plan.notes}


# -- commands -----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        raise UserError(f"{self.prog}: {message}; see `trtmake {self.prog.split()[-1]} --help`")

    def parse(self, argv: list[str]) -> argparse.Namespace | None:
        """The arguments, or None when --help printed the usage (nothing else to do)."""
        try:
            return self.parse_intermixed_args(argv)
        except SystemExit:  # argparse finished the command itself: --help printed the usage
            return None


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
        if name not in recipes and target_id(name) not in inv.pointers:
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
    return len(live), sum(r.size for r in live) + sum(inv.objects[d].size for d in digests)


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
