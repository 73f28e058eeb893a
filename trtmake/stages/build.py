"""build: the backend turns the precision graph into an engine + layer info (+ timing cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.backends.base import BuildSpec
from trtmake.datasets import synthetic_batch
from trtmake.errors import BuildFailed, UserError
from trtmake.keys import StageKey
from trtmake.onnx_info import input_specs
from trtmake.stages.base import Stage, StageInput, StageOutput


class BuildStage(Stage):
    name = "build"
    version = 2
    params = ()  # the backend's options reach it parsed (StageInput.options), and the profiles
    served = {"engine": "build.engine"}
    uses_backend = True

    def key(self, inp: StageInput) -> StageKey:
        backend, options = inp.backend, inp.options
        config = backend.build_config(options, inp.profiles)
        inputs = {"graph": inp.artifact("precision").digest}
        tc = backend.timing_cache(options, inp.ctx.path)
        if tc is not None:
            if not tc.is_file():
                raise UserError(f"backend.{backend.name}.timing_cache: {tc} does not exist; remove the "
                                "setting or create it with `trtmake merge-timing-cache`")
            inputs["timing_cache"] = inp.ctx.cache.stat.digest(tc)
        return StageKey(self.name, self.version, config={"backend": backend.name, **config},
                        inputs=inputs, toolchain=backend.fingerprint(options))

    def run(self, inp: StageInput, key: StageKey, workdir: Path) -> StageOutput:
        ctx, backend, options = inp.ctx, inp.backend, inp.options
        graph = inp.artifact("precision")
        same_as_source = "source" in ctx.artifacts and graph.digest == ctx.artifacts["source"].digest
        spec = BuildSpec(onnx_path=graph.path, profiles=inp.profiles, options=options,
                         timing_cache=backend.timing_cache(options, ctx.path),
                         nodes=ctx.stage_data("source").get("nodes") if same_as_source else None)
        with backend.build_slot(options, ctx.cache.locks_dir, ctx.cache.lock_timeout_s,
                                what=f"{ctx.name}/build"):
            result = backend.build(spec, workdir)
            check_engine(inp, result.engine_path)
        log = workdir / "build.log"
        log.write_text(result.log)
        files = {"engine": result.engine_path, "log": log}
        if result.timing_cache_path is not None:
            files["timing_cache"] = result.timing_cache_path
        return StageOutput(files=files, data={"layer_info": result.layer_info, **result.extra})


def check_engine(inp: StageInput, engine: Path) -> None:
    """An engine is published only once it loads and runs: one inference at the profile's opt
    shapes, on the same seeded batch the source stage ran its graph on. A failure publishes nothing."""
    feeds = synthetic_batch(input_specs(inp.ctx.stage_data("source")), inp.profile.shapes_at("opt"))
    with inp.backend.load(engine, inp.options) as runner:
        outputs: dict[str, Any] = runner.infer(feeds)
    if not outputs:
        raise BuildFailed(f"the {inp.backend.name} engine of {inp.ctx.name} produced no outputs")
