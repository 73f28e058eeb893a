"""reference + validate: the source model in onnxruntime FP32 gives reference outputs; the
engine is run on the same inputs, compared, timed, and the recipe's assertions are evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from trtmake import assertions as asserts
from trtmake import metrics
from trtmake.datasets import batches, is_synthetic, load_samples, source_digest
from trtmake.errors import BuildFailed
from trtmake.keys import StageKey
from trtmake.stages.base import Context, Stage, StageOutput
from trtmake.stages.build import backend_options, target_profile
from trtmake.stages.source import _versions

KEY = "dataset.validation"


def _points(ctx: Context) -> dict[str, dict[str, list[int]]]:
    profile = target_profile(ctx)
    return {p: {n: list(s) for n, s in sorted(profile.shapes_at(p).items())} for p in ctx.target["validation"]["shapes"]}


def validation_batches(ctx: Context) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per profile point, the validation inputs as batches at that point's shapes. Made once per
    run: the reference and validate stages feed the same inputs (ResNet-50's 16 synthetic ones
    cost ~0.023 s to make)."""
    made = ctx.data.get("__validation_batches")
    if made is not None:
        return made
    from trtmake.onnx_info import input_specs

    specs = input_specs(ctx.stage_data("source"))
    src = ctx.target["dataset"]["validation"]
    count = ctx.target["validation"]["num_samples"]
    out = {}
    for point, shapes in _points(ctx).items():
        samples = load_samples(src, KEY, ctx.target.project_root, specs, shapes, count)
        out[point] = batches(samples, shapes[specs[0].name][0])
    ctx.data["__validation_batches"] = out
    return out


def dataset_digest(ctx: Context) -> str:
    return source_digest(ctx.target["dataset"]["validation"], KEY, ctx.target.project_root, ctx.cache.stat)


class ReferenceStage(Stage):
    name = "reference"
    version = 1

    def key(self, ctx: Context) -> StageKey:
        return StageKey(self.name, self.version,
                        config={"points": _points(ctx), "num_samples": ctx.target["validation"]["num_samples"]},
                        inputs={"source": ctx.artifact("source").digest, "dataset": dataset_digest(ctx)},
                        toolchain=_versions("onnxruntime"))

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        import numpy as np
        from trtmake.backends.onnxruntime import OrtRunner

        arrays: dict[str, np.ndarray] = {}
        with OrtRunner(ctx.artifact("source").path, {}, level="basic") as runner:
            for point, feeds in validation_batches(ctx).items():
                for i, feed in enumerate(feeds):
                    for name, value in runner.infer(feed).items():
                        arrays[f"{point}/{i}/{name}"] = value
        out = workdir / "reference.npz"
        with open(out, "wb") as f:
            np.savez(f, **arrays)
        return StageOutput(files={"outputs": out}, data={"arrays": len(arrays)})


def load_reference(path: Path) -> dict[str, list[dict[str, np.ndarray]]]:
    import numpy as np

    out: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            point, idx, name = k.split("/", 2)
            out.setdefault(point, {}).setdefault(int(idx), {})[name] = z[k]
    return {p: [b[i] for i in sorted(b)] for p, b in out.items()}


class ValidateStage(Stage):
    name = "validate"
    version = 2

    def key(self, ctx: Context) -> StageKey:
        v = ctx.target["validation"]
        config = {
            "points": _points(ctx),
            "num_samples": v["num_samples"], "warmup": v["warmup"], "iters": v["iters"],
            "class_axis": v["class_axis"], "assertions": asserts.declared(v),
        }
        fp = ctx.backend.fingerprint(backend_options(ctx))
        return StageKey(self.name, self.version, config=config,
                        inputs={"engine": ctx.artifact("build.engine").digest,
                                "reference": ctx.artifact("reference.outputs").digest,
                                "dataset": dataset_digest(ctx)},
                        toolchain={**fp, "host": ctx.host()})

    def always_run(self, ctx: Context) -> bool:
        return bool(ctx.target.cfg.get("revalidate"))

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        engine = ctx.artifact("build.engine")
        if not ctx.cache.verify_object(engine.digest):  # engines are code: verify before use
            raise BuildFailed(f"engine {engine.digest[:12]} failed verification; run again to rebuild it")
        v = ctx.target["validation"]
        reference = load_reference(ctx.artifact("reference.outputs").path)
        feeds_at = validation_batches(ctx)
        total = sum(len(f) for f in feeds_at.values()) + v["iters"] * len(feeds_at)
        done = 0
        metrics_at: dict[str, Any] = {}
        with ctx.backend.load(engine.path, backend_options(ctx)) as runner:
            for point, feeds in feeds_at.items():
                actual = []
                for feed in feeds:
                    actual.append(runner.infer(feed))
                    done += 1
                    ctx.on_progress(self.name, done, total)
                m = metrics.accuracy(reference[point], actual, v["class_axis"])

                def step() -> None:
                    nonlocal done
                    done += 1
                    ctx.on_progress(self.name, done, total)

                lat = runner.time(feeds[0], iters=v["iters"], warmup=v["warmup"], on_step=step)
                batch = next(iter(feeds[0].values())).shape[0]
                metrics_at[point] = {**m, **metrics.speed(lat, batch)}
        verdicts = asserts.evaluate(asserts.declared(v), metrics_at)
        return StageOutput(data={
            "metrics_at": metrics_at, "assertions": verdicts,
            "synthetic_inputs": is_synthetic(ctx.target["dataset"]["validation"]),
            "device": ctx.backend.device_name(key.toolchain),
            "host": ctx.host(),
        })
