"""build: the backend turns the precision graph into an engine + layer info (+ timing cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.backends.base import BuildSpec
from trtmake.errors import BuildFailed, UserError
from trtmake.keys import StageKey
from trtmake.profiles import Profile, fill_static_inputs, profile_from_config
from trtmake.stages.base import Context, Stage, StageOutput


def target_profile(ctx: Context, described: dict[str, Any] | None = None):
    """The target's profile, static inputs filled in from the model (`described`: the source
    stage's summary of it, by default the one in ctx)."""
    from trtmake.onnx_info import input_specs

    prof = ctx.target["profile"]
    profile = profile_from_config(prof["name"], prof["shapes"])
    return fill_static_inputs(profile, input_specs(ctx.stage_data("source") if described is None else described))


def check_target_profile(ctx: Context, described: dict[str, Any] | None = None) -> None:
    """The target's profile against the model's declared inputs: a UserError naming what differs."""
    from trtmake.onnx_info import input_specs
    from trtmake.profiles import check_profile

    described = ctx.stage_data("source") if described is None else described
    check_profile(target_profile(ctx, described), input_specs(described), ctx.target["model"]["name"])


def backend_options(ctx: Context) -> dict[str, Any]:
    return dict(ctx.target["backend"][ctx.backend.name])


class BuildStage(Stage):
    name = "build"
    version = 2

    def key(self, ctx: Context) -> StageKey:
        options = backend_options(ctx)
        config = ctx.backend.build_config(options, (target_profile(ctx),))
        inputs = {"graph": ctx.artifact("precision").digest}
        tc = ctx.backend.timing_cache(options, ctx.target.path)
        if tc is not None:
            if not tc.is_file():
                raise UserError(f"backend.{ctx.backend.name}.timing_cache: {tc} does not exist; remove the "
                                "setting or create it with `trtmake merge-timing-cache`")
            inputs["timing_cache"] = ctx.cache.stat.digest(tc)
        return StageKey(self.name, self.version, config={"backend": ctx.backend.name, **config},
                        inputs=inputs, toolchain=ctx.backend.fingerprint(options))

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        graph = ctx.artifact("precision")
        same_as_source = "source" in ctx.artifacts and graph.digest == ctx.artifact("source").digest
        options = backend_options(ctx)
        profile = target_profile(ctx)
        spec = BuildSpec(onnx_path=graph.path, profiles=(profile,), options=options,
                         timing_cache=ctx.backend.timing_cache(options, ctx.target.path),
                         nodes=ctx.stage_data("source").get("nodes") if same_as_source else None)
        with ctx.backend.build_slot(options, ctx.cache.root / "locks", ctx.cache.lock_timeout_s,
                                    what=f"{ctx.target.name}/build"):
            result = ctx.backend.build(spec, workdir)
            check_engine(ctx, result.engine_path, options, profile)
        log = workdir / "build.log"
        log.write_text(result.log)
        files = {"engine": result.engine_path, "log": log}
        if result.timing_cache_path is not None:
            files["timing_cache"] = result.timing_cache_path
        return StageOutput(files=files, data={"layer_info": result.layer_info, **result.extra})


def check_engine(ctx: Context, engine: Path, options: dict[str, Any], profile: Profile) -> None:
    """An engine is published only once it loads and runs: one inference at the profile's opt
    shapes, on the same seeded batch the source stage ran its graph on. A failure publishes nothing."""
    from trtmake.datasets import synthetic_batch
    from trtmake.onnx_info import input_specs

    feeds = synthetic_batch(input_specs(ctx.stage_data("source")), profile.shapes_at("opt"))
    with ctx.backend.load(engine, options) as runner:
        outputs = runner.infer(feeds)
    if not outputs:
        raise BuildFailed(f"the {ctx.backend.name} engine of {ctx.target.name} produced no outputs")
