"""Runs one target's stages: a stage runs only when its key has no intact record in the cache.

One up-to-date check serves both `build` and `explain` (pydoit's cmd_info idea): explain
computes the same keys and, instead of running, diffs them against the target's last run.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from trtmake.atomic import fault_point
from trtmake.backends.select import backend_named, select_backend
from trtmake.cache import ActionRecord, Cache, Output, storage_error
from trtmake.errors import BuildFailed, CacheCorrupt, MissingDependency, TrtmakeError, UserError, first_line
from trtmake.heavy import lazy_import
from trtmake.keys import StageKey, config_slice, diff_components
from trtmake.stages import pipeline
from trtmake.stages.base import Context, Stage, StageInput, StageOutput, Upstream
from trtmake.target import Target

remotes = lazy_import("trtmake.remote")


@dataclass
class StageResult:
    name: str
    # built | cached | fetched (from the remote cache) | failed | skipped
    # explain: up to date | stale | unknown (the backend is missing)
    status: str
    key: str | None = None
    seconds: float = 0.0  # spent in this run (a cached stage: looking it up and accepting it)
    reasons: list[str] = field(default_factory=list)
    built_seconds: float | None = None  # a cached or fetched stage: how long its build took when it ran
    components: dict[str, Any] = field(default_factory=dict)  # its key's components (explain diffs them)


@dataclass
class TargetResult:
    target: Target
    backend: str = ""
    backend_reason: str = ""
    stages: list[StageResult] = field(default_factory=list)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)
    context: Context | None = None  # the run's state afterwards (show reads artifacts and the profile from it)
    remote: dict[str, Any] | None = None  # the remote cache and what this run moved (None: no remote)

    @property
    def assertions(self) -> list[dict[str, Any]]:
        """The verdicts of the assertions, from the data of whichever stage evaluated them."""
        return [a for s in self.stages for a in self.data.get(s.name, {}).get("assertions", [])]

    @property
    def first_stale(self) -> StageResult | None:
        """After an explain run: the first stage that is not up to date (None: every one is)."""
        return next((s for s in self.stages if s.status != "up to date"), None)

    @property
    def ok(self) -> bool:
        return self.error is None and all(a["passed"] for a in self.assertions)


class Events:
    """What the executor tells a reporter; the executor itself never prints."""

    def stage_started(self, target: Target, stage: str) -> None: ...

    def stage_progress(self, target: Target, stage: str, done: int, total: int) -> None: ...

    def stage_finished(self, target: Target, result: StageResult) -> None: ...


def run_target(target: Target, events: Events | None = None, explain: bool = False,
               pull: RemoteUse | None = None) -> TargetResult:
    """Build the target (explain: only check each stage). `pull` (with explain, `trtmake cache
    pull`): a stage missing here is fetched from that remote, and the next stage's key follows."""
    events = events or Events()
    result = TargetResult(target)
    cache = Cache(target.cache_dir, target["cache"]["lock_timeout_s"])
    notes: list[str] = []
    use = pull if explain else None
    try:
        if not explain:
            cache.ensure_writable()
            # no url: trtmake.remote stays unimported; a url: its filesystem opens on first use
            settings = target["cache"]["remote"]
            remote = remotes.open_remote(**settings) if settings["url"] else None
            use = None if remote is None else RemoteUse(remote)
        missing: MissingDependency | None = None
        try:
            backend, reason = select_backend(target["backend"]["name"], target["backend"])
        except MissingDependency as exc:
            if not explain:
                raise
            # explain goes on: the stages that do not use the backend can still be explained
            missing, backend, reason = exc, backend_named(target["backend"]["name"]), str(exc)
        result.backend, result.backend_reason = backend.name, reason
        options = backend.parse_options(target["backend"][backend.name])
        last = cache.read_pointer(target.target_id) or {}
        # Faults: an object found corrupt when re-hashed right before use is removed and the
        # target runs again, which rebuilds it (a cache miss). Bounded: corruption that reappears
        # on every attempt is reported as a failed build.
        for attempt in range(_ATTEMPTS):
            ctx = Context(target.name, target.project_root, target.path, cache, backend, options,
                          backend_missing=str(missing) if missing else None, explain=explain,
                          on_progress=lambda stage, done, total: events.stage_progress(target, stage, done, total))
            result.stages.clear()
            try:
                notes = _run_stages(ctx, target, last, events, result, use)
                break
            except CacheCorrupt as exc:
                if attempt == _ATTEMPTS - 1:
                    raise BuildFailed(f"{exc}, again after {_ATTEMPTS} rebuilds; check the disk under "
                                      f"{cache.root}") from None
        if missing is not None:
            result.error, result.exit_code = str(missing), missing.exit_code
        ctx.source_graph = ctx.validation_batches = None  # one run's memos die with it
        result.context = ctx
        result.data = {**ctx.data, **result.data}
        if not explain:
            keys = {s.name: {"key": s.key, "components": s.components} for s in result.stages
                    if s.key and s.status in ("built", "cached", "fetched")}
            cache.write_pointer(target.target_id, {"name": target.name, "overrides": list(target.overrides),
                                                   "stages": keys, "updated": time.time()})
        cache.stat.save()
    except TrtmakeError as exc:
        result.error, result.exit_code = str(exc), exc.exit_code
        if isinstance(exc, UserError):
            result.error = target.path_hint(result.error)
        if not isinstance(exc, UserError):
            cache.stat.save()
    except OSError as exc:  # a full or read-only disk under the cache is a user error (exit 2), else internal
        user = storage_error(exc, cache.root)
        result.error = str(user) if user else f"internal error in stage {_failed_stage(result)}: {exc!r}"
        result.exit_code = 2 if user else 1
        if not user:
            result.data["traceback"] = {"text": traceback.format_exc()}
    except Exception as exc:  # an internal error: one line for the user, the traceback in the report
        result.error = f"internal error in stage {_failed_stage(result)}: {type(exc).__name__}: {exc}"
        result.exit_code = 1
        result.data["traceback"] = {"text": traceback.format_exc()}
    _mark_failed(result)
    if use is not None:
        stats = use.remote.stats
        result.remote = {"url": use.remote.display, "mode": use.remote.mode, "hits": stats.hits,
                         "misses": stats.misses, "bytes_in": stats.bytes_in, "bytes_out": stats.bytes_out}
    result.warnings = list(cache.warnings) + notes
    if result.exit_code == 0 and not result.ok:
        result.exit_code = 1
    return result


_ATTEMPTS = 3


def _run_stages(ctx: Context, target: Target, last: dict, events: Events, result: TargetResult,
                remote: RemoteUse | None) -> list[str]:
    """Every stage of the target's pipeline in order; returns the stages' warnings for the report."""
    unknown: set[str] = set()  # explain: stages whose key needs the missing backend
    done: list[tuple[Stage, StageInput]] = []
    for stage in pipeline(target.cfg):
        inp = StageInput(config_slice(target.cfg, stage.params), ctx)
        try:
            if ctx.explain:
                res = _explain_stage(stage, inp, last, unknown, remote)
            else:
                res = _build_stage(stage, inp, target, events, remote)
        except BaseException:
            result.stages.append(StageResult(stage.name, "failed"))
            raise
        result.stages.append(res)
        if res.status in ("built", "cached", "fetched", "up to date"):
            stage.check(inp)  # also after a cache hit: a cached result may be another target's
            done.append((stage, inp))
    served = {entry: ctx.artifacts[name] for stage, _ in done for entry, name in stage.served.items()
              if name in ctx.artifacts}
    for entry, artifact in served.items():
        result.data[entry] = {"path": str(artifact.path), "digest": artifact.digest}
    if not ctx.explain:  # the report hands these files out: re-hash them first
        # ...except objects over SERVED_REHASH_MAX_BYTES: a 1 GB engine would cost ~0.6 s of reading
        # on every no-op; get_record already checked their size and stat, and they are re-hashed
        # when a stage reads them
        ctx.cache.verify_for_use([a.digest for a in served.values() if _size(a.path) <= SERVED_REHASH_MAX_BYTES],
                                 f"{ctx.name}/report")
    return [note for stage, inp in done for note in stage.warnings(inp)]


SERVED_REHASH_MAX_BYTES = 256 << 20


def _size(path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _failed_stage(result: TargetResult) -> str:
    return next((s.name for s in result.stages if s.status == "failed"), "?")


def _mark_failed(result: TargetResult) -> None:
    """After an error: the stage it happened in says why, the stages after it are skipped."""
    if result.error is None:
        return
    for s in result.stages:
        if s.status == "failed" and not s.reasons:
            s.reasons = [result.error or ""]
    done = {s.name for s in result.stages}
    for stage in pipeline(result.target.cfg):
        if stage.name not in done:
            result.stages.append(StageResult(stage.name, "skipped"))


def _build_stage(stage: Stage, inp: StageInput, target: Target, events: Events, remote: RemoteUse | None) -> StageResult:
    """A local hit is accepted as it is. On a miss, inside the key's lock: the local cache again (another
    process may have built it meanwhile), then the remote cache, and only then the stage runs; what
    it built is pushed to the remote."""
    ctx = inp.ctx
    started = time.perf_counter()
    key = stage.key(inp)
    digest, components = key.digest, key.components()
    force = stage.always_run(inp)
    record = None if force else ctx.cache.get_record(digest)
    if record is not None:
        stage.accept(inp, record)
        res = StageResult(stage.name, "cached", digest, time.perf_counter() - started,
                          built_seconds=record.seconds, components=components)
        events.stage_finished(target, res)
        return res
    events.stage_started(target, stage.name)
    with ctx.cache.lock(digest, f"{ctx.name}/{stage.name}"):
        fault_point(f"{stage.name}:locked")
        record = None if force else ctx.cache.get_record(digest)  # built by another process meanwhile?
        status = "cached"
        if record is None and not force and remote is not None:
            record, status = remote.fetch(ctx.cache, key), "fetched"
        if record is None:
            status = "built"
            record = _run_and_publish(stage, inp, key)
            fault_point(f"{stage.name}:recorded")
    if status == "built" and remote is not None and remote.remote.writable:
        _push(remote.remote, ctx.cache, record)
    stage.accept(inp, record)
    spent = time.perf_counter() - started
    res = StageResult(stage.name, status, digest, record.seconds if status == "built" else spent,
                      built_seconds=None if status == "built" else record.seconds, components=components)
    events.stage_finished(target, res)
    return res


@dataclass(frozen=True)
class RemoteUse:
    """The remote cache as one target's run uses it.

    Every key is a pure function of its inputs and its toolchain, so any runner's result for it
    is as good as one made here, except a key that holds the host (validate's): its latency
    figures are facts of the machine that measured them. Such a record is pushed (what that host
    measured) but never fetched: a runner validates on its own device. With
    `validation.trust_remote=true` the validate key names the device fingerprint instead of the
    host, and a measurement from any runner with the same device and toolchain is fetched."""

    remote: remotes.Remote

    def fetch(self, cache: Cache, key: StageKey) -> ActionRecord | None:
        if "host" in key.toolchain:
            return None
        return self.remote.fetch(cache, key.digest)


def _push(remote: remotes.Remote, cache: Cache, record: ActionRecord) -> None:
    """Objects first, the record last (Remote.push); a remote that refuses is a warning, never a
    failed build: the result is in the local cache either way."""
    try:
        remote.push(cache, record.key, record)
    except (remotes.RemoteFailed, OSError) as exc:
        cache.warnings.append(f"{first_line(exc, 300)}: not pushed (kept in the local cache)")


def _run_and_publish(stage: Stage, inp: StageInput, key: StageKey) -> ActionRecord:
    ctx = inp.ctx
    # inputs read from the cache are re-hashed first: a stat match cannot see bit rot
    ctx.cache.verify_for_use(list(key.inputs.values()), f"{ctx.name}/{stage.name}")
    started = time.perf_counter()
    with ctx.cache.workdir(stage.name) as workdir:
        try:
            out: StageOutput = stage.run(inp, key, workdir)
        except UserError:
            raise
        except Exception:  # a write that failed on a full disk, in a library's own words: say so (exit 2)
            full = ctx.cache.storage_full()
            if full is not None:
                raise full from None
            raise
        seconds = time.perf_counter() - started
        fault_point(f"{stage.name}:ran")
        outputs = {name: Output(**ctx.cache.put_file(path)) for name, path in out.files.items()}
        fault_point(f"{stage.name}:published")
    return ctx.cache.put_action(ActionRecord(
        key=key.digest, outputs=outputs, stage=stage.name, data=out.data, components=key.components(),
        target=ctx.name, seconds=seconds, host=ctx.host()))


def _explain_stage(stage: Stage, inp: StageInput, last: dict, unknown: set[str], pull: RemoteUse | None) -> StageResult:
    ctx = inp.ctx
    previous = (last.get("stages") or {}).get(stage.name)
    needs = f"needs {ctx.backend.name}, which is not available here"
    if stage.uses_backend and ctx.backend_missing:
        unknown.add(stage.name)
        return StageResult(stage.name, "unknown", None, reasons=[needs])
    try:
        key = stage.key(inp)
    except MissingDependency:  # a toolchain this stage's key needs is not installed
        unknown.add(stage.name)
        return StageResult(stage.name, "unknown", None, reasons=[needs])
    except Upstream as up:
        if up.stage in unknown:
            unknown.add(stage.name)
            return StageResult(stage.name, "unknown", None,
                               reasons=[f"its input '{up.stage}' needs {ctx.backend.name}, which is not available here"])
        return StageResult(stage.name, "stale", None, reasons=[f"its input '{up.stage}' will be rebuilt first"])
    components = key.components()
    record = ctx.cache.get_record(key.digest)
    if record is not None and not stage.always_run(inp):
        stage.accept(inp, record)
        return StageResult(stage.name, "up to date", key.digest, components=components)
    if pull is not None and not stage.always_run(inp):
        record = pull.fetch(ctx.cache, key)
        if record is not None:
            stage.accept(inp, record)
            return StageResult(stage.name, "fetched", key.digest, components=components)
    if previous is None:
        reasons = ["never built for this target" if not last else "no record of this stage's last run"]
    elif previous["key"] == key.digest:
        reasons = ["its cached result is missing or corrupt" if not stage.always_run(inp) else "revalidate=true"]
    else:
        reasons = diff_components(previous["components"], components)
    return StageResult(stage.name, "stale", key.digest, reasons=reasons, components=components)
