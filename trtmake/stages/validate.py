"""reference + validate: the source model in onnxruntime FP32 gives reference outputs; the
engine is run on the same inputs, compared, timed, and the recipe's assertions are evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from trtmake import assertions as asserts
from trtmake import metrics
from trtmake.backends.onnxruntime import OrtRunner
from trtmake.datasets import batches, constant_inputs, is_synthetic, load_samples, source_digest
from trtmake.errors import BuildFailed
from trtmake.keys import StageKey, toolchain_versions
from trtmake.onnx_info import input_specs
from trtmake.stages.base import Stage, StageInput, StageOutput

KEY = "dataset.validation"


def _points(inp: StageInput) -> dict[str, dict[str, list[int]]]:
    return {p: {n: list(s) for n, s in sorted(inp.profile.shapes_at(p).items())} for p in inp.params["validation"]["shapes"]}


def validation_batches(inp: StageInput) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per profile point, the validation inputs as batches at that point's shapes. Made once per
    run: the reference and validate stages feed the same inputs (ResNet-50's 16 synthetic ones
    cost ~0.023 s to make)."""
    ctx = inp.ctx
    if ctx.validation_batches is not None:
        return ctx.validation_batches
    specs = input_specs(ctx.stage_data("source"))
    src = inp.params["dataset"]["validation"]
    count = inp.params["validation"]["num_samples"]
    out = {}
    for point, shapes in _points(inp).items():
        samples = load_samples(src, KEY, ctx.root, specs, shapes, count)
        out[point] = batches(samples, shapes[specs[0].name][0])
    ctx.validation_batches = out
    return out


def dataset_digest(inp: StageInput) -> str:
    return source_digest(inp.params["dataset"]["validation"], KEY, inp.ctx.root, inp.ctx.cache.stat)


class ReferenceStage(Stage):
    name = "reference"
    version = 1
    params = ("validation.shapes", "validation.num_samples", "dataset.validation")

    def key(self, inp: StageInput) -> StageKey:
        return StageKey(self.name, self.version,
                        config={"points": _points(inp), "num_samples": inp.params["validation"]["num_samples"]},
                        inputs={"source": inp.artifact("source").digest, "dataset": dataset_digest(inp)},
                        toolchain=toolchain_versions("onnxruntime"))

    def run(self, inp: StageInput, key: StageKey, workdir: Path) -> StageOutput:
        import numpy as np

        arrays: dict[str, np.ndarray] = {}
        with OrtRunner(inp.artifact("source").path, level="basic") as runner:
            for point, feeds in validation_batches(inp).items():
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
    params = ("validation", "dataset.validation", "revalidate")
    uses_backend = True

    def key(self, inp: StageInput) -> StageKey:
        v = inp.params["validation"]
        config = {
            "points": _points(inp),
            "num_samples": v["num_samples"], "warmup": v["warmup"], "iters": v["iters"],
            "class_axis": v["class_axis"], "assertions": asserts.declared(v),
        }
        fp = inp.backend.fingerprint(inp.options)
        return StageKey(self.name, self.version, config=config,
                        inputs={"engine": inp.artifact("build.engine").digest,
                                "reference": inp.artifact("reference.outputs").digest,
                                "dataset": dataset_digest(inp)},
                        toolchain={**fp, "host": inp.ctx.host()})

    def always_run(self, inp: StageInput) -> bool:
        return bool(inp.params["revalidate"])

    def run(self, inp: StageInput, key: StageKey, workdir: Path) -> StageOutput:
        ctx = inp.ctx
        engine = inp.artifact("build.engine")
        if not ctx.cache.verify_object(engine.digest):  # engines are code: verify before use
            raise BuildFailed(f"engine {engine.digest[:12]} failed verification; run again to rebuild it")
        v = inp.params["validation"]
        reference = load_reference(inp.artifact("reference.outputs").path)
        feeds_at = validation_batches(inp)
        total = sum(len(f) for f in feeds_at.values()) + v["iters"] * len(feeds_at)
        done = 0
        metrics_at: dict[str, Any] = {}
        with inp.backend.load(engine.path, inp.options) as runner:
            for point, feeds in feeds_at.items():
                actual = []
                for feed in feeds:
                    actual.append(runner.infer(feed))
                    done += 1
                    inp.ctx.on_progress(self.name, done, total)
                m = metrics.accuracy(reference[point], actual, v["class_axis"])

                def step() -> None:
                    nonlocal done
                    done += 1
                    inp.ctx.on_progress(self.name, done, total)

                lat = runner.time(feeds[0], iters=v["iters"], warmup=v["warmup"], on_step=step)
                batch = next(iter(feeds[0].values())).shape[0]
                metrics_at[point] = {**m, **metrics.speed(lat, batch)}
        verdicts = asserts.evaluate(asserts.declared(v), metrics_at)
        return StageOutput(data={
            "metrics_at": metrics_at, "assertions": verdicts,
            "synthetic_inputs": is_synthetic(inp.params["dataset"]["validation"]),
            "device": inp.backend.device_name(key.toolchain),
            "host": ctx.host(),
        })

    def warnings(self, inp: StageInput) -> list[str]:
        """When this run made validation inputs that hold one value throughout: the comparison
        with the reference then says little about the engine."""
        made = inp.ctx.validation_batches or {}
        names = sorted({n for feeds in made.values() for n in constant_inputs(feeds)})
        if not names:
            return []
        return [f"dataset.validation: input(s) {', '.join(repr(n) for n in names[:4])} hold one value in every "
                "sample; validation says little there: give varied data (dataset.validation.path, or int_range)"]
