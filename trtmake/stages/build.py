"""build: the backend turns the precision graph into an engine + layer info (+ timing cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.backends.base import BuildSpec
from trtmake.gpu_lock import build_slot
from trtmake.keys import StageKey
from trtmake.profiles import fill_static_inputs, profile_from_config
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
    version = 1

    def _timing_cache(self, ctx: Context) -> Path | None:
        tc = backend_options(ctx).get("timing_cache")
        return ctx.target.path(tc) if tc and ctx.backend.name == "tensorrt" else None

    def key(self, ctx: Context) -> StageKey:
        options = backend_options(ctx)
        profile = target_profile(ctx)
        if hasattr(ctx.backend, "build_config"):
            config = ctx.backend.build_config(options, (profile,))
        else:
            config = {"options": {k: v for k, v in options.items() if k not in ("timing_cache", "max_builds_per_gpu")},
                      "profiles": {profile.name: {n: [list(r.min), list(r.opt), list(r.max)]
                                                  for n, r in sorted(profile.shapes.items())}}}
        inputs = {"graph": ctx.artifact("precision").digest}
        tc = self._timing_cache(ctx)
        if tc is not None:
            if not tc.is_file():
                from trtmake.errors import UserError

                raise UserError(f"backend.tensorrt.timing_cache: {tc} does not exist; remove the setting "
                                "or create it with `trtmake merge-timing-cache`")
            inputs["timing_cache"] = ctx.cache.stat.digest(tc)
        return StageKey(self.name, self.version, config={"backend": ctx.backend.name, **config},
                        inputs=inputs, toolchain=ctx.backend.fingerprint(options))

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        graph = ctx.artifact("precision")
        same_as_source = "source" in ctx.artifacts and graph.digest == ctx.artifact("source").digest
        spec = BuildSpec(onnx_path=graph.path, profiles=(target_profile(ctx),),
                         options=backend_options(ctx), timing_cache=self._timing_cache(ctx),
                         nodes=ctx.stage_data("source").get("nodes") if same_as_source else None)
        with build_slot(ctx):  # tensorrt: at most backend.tensorrt.max_builds_per_gpu builds per GPU
            result = ctx.backend.build(spec, workdir)
        log = workdir / "build.log"
        log.write_text(result.log)
        files = {"engine": result.engine_path, "log": log}
        if result.timing_cache_path is not None:
            files["timing_cache"] = result.timing_cache_path
        return StageOutput(files=files, data={"layer_info": result.layer_info, **result.extra})
