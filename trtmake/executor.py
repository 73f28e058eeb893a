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
from trtmake.cache import Cache, storage_error
from trtmake.errors import BuildFailed, CacheCorrupt, MissingDependency, TrtmakeError, UserError
from trtmake.keys import StageKey, diff_components
from trtmake.stages.base import Context, Stage, StageOutput, Upstream
from trtmake.target import Target


@dataclass
class StageResult:
    name: str
    status: str  # built | cached | failed | skipped | up to date | stale | unknown (explain: backend missing)
    key: str | None = None
    seconds: float = 0.0  # spent in this run (a cached stage: looking it up and accepting it)
    reasons: list[str] = field(default_factory=list)
    built_seconds: float | None = None  # a cached stage: how long its build took when it ran


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
    context: Any = None  # the stage context after the run (explain/show read artifacts from it)

    @property
    def assertions(self) -> list[dict[str, Any]]:
        return self.data.get("validate", {}).get("assertions", [])

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


def stages_for(target: Target) -> list[Stage]:
    from trtmake.stages.build import BuildStage
    from trtmake.stages.precision import PrecisionStage
    from trtmake.stages.source import SourceStage
    from trtmake.stages.validate import ReferenceStage, ValidateStage

    pipeline: list[Stage] = [SourceStage()]
    if target["precision"]["mode"] == "int8":
        from trtmake.stages.int8 import CalibrateStage

        pipeline.append(CalibrateStage())
    pipeline += [PrecisionStage(), BuildStage(), ReferenceStage(), ValidateStage()]
    return pipeline


def run_target(target: Target, events: Events | None = None, explain: bool = False) -> TargetResult:
    events = events or Events()
    result = TargetResult(target)
    cache = Cache(target.cache_dir, target["cache"]["lock_timeout_s"])
    current: list[str] = []
    notes: list[str] = []
    try:
        from trtmake.backends.select import backend_named, select_backend

        if not explain:
            cache.ensure_writable()
        missing: MissingDependency | None = None
        try:
            backend, reason = select_backend(target["backend"]["name"], target["backend"])
        except MissingDependency as exc:
            if not explain:
                raise
            # explain goes on: the stages that do not use the backend can still be explained
            missing, backend, reason = exc, backend_named(target["backend"]["name"]), str(exc)
        result.backend, result.backend_reason = backend.name, reason
        last = cache.read_pointer(target.target_id) or {}
        # Faults (issue 6): an object found corrupt when re-hashed right before use is removed and
        # the target runs again, which rebuilds it (a cache miss). Bounded: corruption that
        # reappears on every attempt is reported as a failed build.
        for attempt in range(_ATTEMPTS):
            ctx = Context(target, cache, backend, reason, explain=explain,
                          on_progress=lambda stage, done, total: events.stage_progress(target, stage, done, total))
            result.stages.clear()
            try:
                keys = _run_stages(ctx, last, events, explain, result, current)
                break
            except CacheCorrupt as exc:
                if attempt == _ATTEMPTS - 1:
                    raise BuildFailed(f"{exc}, again after {_ATTEMPTS} rebuilds; check the disk under "
                                      f"{cache.root}") from None
        if missing is not None:
            result.error, result.exit_code = str(missing), missing.exit_code
        notes = _constant_validation_inputs(ctx)
        # one run's memos (the parsed source graph, the validation batches) die with it
        for scratch in [k for k in ctx.data if k.startswith("__")]:
            del ctx.data[scratch]
        result.context = ctx
        result.data = dict(ctx.data)
        if "precision" in ctx.artifacts:
            graph = ctx.artifacts["precision"]
            result.data["graph"] = {"path": str(graph.path), "digest": graph.digest}
        if "build.engine" in ctx.artifacts:
            engine = ctx.artifacts["build.engine"]
            result.data["engine"] = {"path": str(engine.path), "digest": engine.digest}
        if not explain:
            cache.write_pointer(target.target_id, {"name": target.name, "overrides": list(target.overrides),
                                                   "stages": keys, "updated": time.time()})
        cache.stat.save()
    except TrtmakeError as exc:
        result.error, result.exit_code = str(exc), exc.exit_code
        if isinstance(exc, UserError):
            result.error = target.path_hint(result.error)
        _mark_failed(result, current)
        if not isinstance(exc, UserError):
            cache.stat.save()
    except OSError as exc:  # a full or read-only disk under the cache is a user error (exit 2), else internal
        user = storage_error(exc, cache.root)
        result.error = str(user) if user else f"internal error in stage {current[0] if current else '?'}: {exc!r}"
        result.exit_code = 2 if user else 1
        if not user:
            result.data["traceback"] = {"text": traceback.format_exc()}
        _mark_failed(result, current)
    except Exception as exc:  # an internal error: one line for the user, the traceback in the report
        result.error = f"internal error in stage {current[0] if current else '?'}: {type(exc).__name__}: {exc}"
        result.exit_code = 1
        result.data["traceback"] = {"text": traceback.format_exc()}
        _mark_failed(result, current)
    result.warnings = list(cache.warnings) + notes
    if result.exit_code == 0 and not result.ok:
        result.exit_code = 1
    return result


_ATTEMPTS = 3


def _constant_validation_inputs(ctx: Context) -> list[str]:
    """A warning when this run made validation inputs that hold one value throughout: the
    comparison with the reference then says little about the engine."""
    from trtmake.datasets import constant_inputs

    made = ctx.data.get("__validation_batches") or {}
    names = sorted({n for feeds in made.values() for n in constant_inputs(feeds)})
    if not names:
        return []
    return [f"dataset.validation: input(s) {', '.join(repr(n) for n in names[:4])} hold one value in every "
            "sample; validation says little there: give varied data (dataset.validation.path, or int_range)"]


def _run_stages(ctx: Context, last: dict, events: Events, explain: bool, result: TargetResult,
                current: list[str]) -> dict[str, dict[str, Any]]:
    from trtmake.stages.build import check_target_profile

    keys: dict[str, dict[str, Any]] = {}
    for stage in stages_for(ctx.target):
        current[:] = [stage.name]
        res = (_explain_stage if explain else _build_stage)(stage, ctx, last, events)
        result.stages.append(res)
        if res.key and res.status in ("built", "cached", "up to date"):
            keys[stage.name] = {"key": res.key, "components": ctx.data.pop(f"__components_{stage.name}", {})}
        if stage.name == "source" and "source" in ctx.data:
            check_target_profile(ctx)  # also after a cache hit: the source may be another target's
    if not explain:  # the report hands out the engine and the graph: re-hash them first (issue 6)
        served = [ctx.artifacts[a] for a in ("build.engine", "precision") if a in ctx.artifacts]
        # ...except objects over SERVED_REHASH_MAX_BYTES: a 1 GB engine would cost ~0.6 s of reading on
        # every no-op (issue 7); get_action already checked their size and stat, and they are
        # re-hashed when a stage reads them
        ctx.cache.verify_for_use([a.digest for a in served if _size(a.path) <= SERVED_REHASH_MAX_BYTES],
                                 f"{ctx.target.name}/report")
    return keys


SERVED_REHASH_MAX_BYTES = 256 << 20


def _size(path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mark_failed(result: TargetResult, current: list[str]) -> None:
    if current and not any(s.name == current[0] for s in result.stages):
        result.stages.append(StageResult(current[0], "failed", reasons=[result.error or ""]))
    done = {s.name for s in result.stages}
    for stage in stages_for(result.target):
        if stage.name not in done:
            result.stages.append(StageResult(stage.name, "skipped"))


def _build_stage(stage: Stage, ctx: Context, last: dict, events: Events) -> StageResult:
    started = time.perf_counter()
    key = stage.key(ctx)
    digest = key.digest
    ctx.data[f"__components_{stage.name}"] = key.components()
    force = stage.always_run(ctx)
    record = None if force else ctx.cache.get_action(digest)
    if record is not None:
        stage.accept(ctx, record)
        res = StageResult(stage.name, "cached", digest, time.perf_counter() - started,
                          built_seconds=record.get("seconds", 0.0))
        events.stage_finished(ctx.target, res)
        return res
    events.stage_started(ctx.target, stage.name)
    with ctx.cache.lock(digest, f"{ctx.target.name}/{stage.name}"):
        fault_point(f"{stage.name}:locked")
        record = None if force else ctx.cache.get_action(digest)  # built by another process meanwhile?
        if record is not None:
            status = "cached"
        else:
            status = "built"
            record = _run_and_publish(stage, ctx, key)
            fault_point(f"{stage.name}:recorded")
    stage.accept(ctx, record)
    spent = time.perf_counter() - started
    res = StageResult(stage.name, status, digest, spent if status == "cached" else record.get("seconds", spent),
                      built_seconds=record.get("seconds", 0.0) if status == "cached" else None)
    events.stage_finished(ctx.target, res)
    return res


def _run_and_publish(stage: Stage, ctx: Context, key: StageKey) -> dict[str, Any]:
    # inputs read from the cache are re-hashed first: a stat match cannot see bit rot (issue 6)
    ctx.cache.verify_for_use(list(key.inputs.values()), f"{ctx.target.name}/{stage.name}")
    started = time.perf_counter()
    with ctx.cache.workdir(stage.name) as workdir:
        try:
            out: StageOutput = stage.run(ctx, key, workdir)
        except UserError:
            raise
        except Exception:  # a write that failed on a full disk, in a library's own words: say so (exit 2)
            full = ctx.cache.storage_full()
            if full is not None:
                raise full from None
            raise
        seconds = time.perf_counter() - started
        fault_point(f"{stage.name}:ran")
        outputs = {name: ctx.cache.put_file(path) for name, path in out.files.items()}
        fault_point(f"{stage.name}:published")
    return ctx.cache.put_action(key.digest, {
        "stage": stage.name, "target": ctx.target.name, "components": key.components(),
        "outputs": outputs, "data": out.data, "seconds": seconds, "host": ctx.host()})


def _explain_stage(stage: Stage, ctx: Context, last: dict, events: Events) -> StageResult:
    previous = (last.get("stages") or {}).get(stage.name)
    unknown = ctx.data.setdefault("__needs_backend", set())
    try:
        key = stage.key(ctx)
    except MissingDependency:  # the backend's toolchain is not installed: this stage's key needs it
        unknown.add(stage.name)
        return StageResult(stage.name, "unknown", None, reasons=[f"needs {ctx.backend.name}, which is not available here"])
    except Upstream as up:
        if up.stage in unknown:
            unknown.add(stage.name)
            return StageResult(stage.name, "unknown", None,
                               reasons=[f"its input '{up.stage}' needs {ctx.backend.name}, which is not available here"])
        reasons = [f"its input '{up.stage}' will be rebuilt first"]
        return StageResult(stage.name, "stale", None, reasons=reasons)
    ctx.data[f"__components_{stage.name}"] = key.components()
    record = ctx.cache.get_action(key.digest)
    if record is not None and not stage.always_run(ctx):
        stage.accept(ctx, record)
        return StageResult(stage.name, "up to date", key.digest)
    if previous is None:
        reasons = ["never built for this target" if not last else "no record of this stage's last run"]
    elif previous["key"] == key.digest:
        reasons = ["its cached result is missing or corrupt" if not stage.always_run(ctx) else "revalidate=true"]
    else:
        reasons = diff_components(previous["components"], key.components())
    return StageResult(stage.name, "stale", key.digest, reasons=reasons)

