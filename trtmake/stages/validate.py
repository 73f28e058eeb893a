"""reference + validate: the source model in onnxruntime FP32 gives reference outputs; the
engine is run on the same inputs, compared, timed, and the recipe's assertions are evaluated.

Validation points: each point of validation.shapes in each profile, named `opt` with one profile
and `short/opt` with several; on a backend with optimization profiles each runs on its own.
Besides accuracy and latency per point, once per engine: memory (`memory`: engine_file_mb,
weights_mb, activation_mb, total_mb; the backend's runner says how it measures), samples/s
with N concurrent executions at the first point (`streams`: one stream always, from the timed
runs; more as validation.streams asks), and the
latency over a grid of shapes (`sweep`, validation.sweep; trtmake/shape_sweep.py).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy as np

from trtmake import assertions as asserts
from trtmake import metrics
from trtmake.backends.onnxruntime import OrtRunner
from trtmake.datasets import batches, constant_inputs, is_synthetic, load_samples, source_digest
from trtmake.errors import BuildFailed
from trtmake.keys import StageKey, toolchain_versions
from trtmake.onnx_info import input_specs
from trtmake.shape_sweep import SweepPoint, grid
from trtmake.stages.base import Stage, StageInput, StageOutput

KEY = "dataset.validation"


def _point_profiles(inp: StageInput) -> dict[str, int]:
    """Each validation point's name (`opt` with one profile, `short/opt` with several) -> the index
    of the profile it belongs to, in order."""
    several = len(inp.profiles) > 1
    return {f"{p.name}/{point}" if several else point: i for i, p in enumerate(inp.profiles)
            for point in inp.params["validation"]["shapes"]}


def _points(inp: StageInput) -> dict[str, dict[str, list[int]]]:
    out = {}
    for name, index in _point_profiles(inp).items():
        shapes = inp.profiles[index].shapes_at(name.rpartition("/")[2])
        out[name] = {n: list(s) for n, s in sorted(shapes.items())}
    return out


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
        for k in z.files:  # <point>/<index>/<output>: the point (`opt`, `short/opt`) ends before the index
            parts = k.split("/")
            at = next(i for i, part in enumerate(parts) if part.isdigit())
            point, idx, name = "/".join(parts[:at]), parts[at], "/".join(parts[at + 1:])
            out.setdefault(point, {}).setdefault(int(idx), {})[name] = z[k]
    return {p: [b[i] for i in sorted(b)] for p, b in out.items()}


class ValidateStage(Stage):
    name = "validate"
    version = 4  # 4: metrics.streams in every report (one stream from the timed runs)
    params = ("validation", "dataset.validation", "revalidate")
    uses_backend = True

    def key(self, inp: StageInput) -> StageKey:
        v = inp.params["validation"]
        config = {"points": _points(inp), "num_samples": v["num_samples"], "warmup": v["warmup"], "iters": v["iters"],
                  "class_axis": v["class_axis"], "assertions": asserts.declared(v, _several(inp))}
        if v.get("retrieval_k") is not None:
            config["retrieval_k"] = v["retrieval_k"]
            if v.get("retrieval_margin"):
                config["retrieval_margin"] = v["retrieval_margin"]
        if v.get("streams"):
            config["streams"] = list(v["streams"])
        sweep = grid(inp.profiles, v.get("sweep"))  # again, now against the model's full profiles
        if sweep:
            config["sweep"] = [[p.batch, p.seq, p.profile] for p in sweep]
        # latency and memory are facts of the machine that measured them: the key names the host,
        # unless validation.trust_remote accepts a measurement from any runner with the same device
        # and toolchain (the fingerprint: GPU model, compute capability, TensorRT, CUDA; or CPU ISA)
        toolchain = dict(inp.backend.fingerprint(inp.options))
        if not v.get("trust_remote"):
            toolchain["host"] = inp.ctx.host()
        return StageKey(self.name, self.version, config=config,
                        inputs={"engine": inp.artifact("build.engine").digest,
                                "reference": inp.artifact("reference.outputs").digest,
                                "dataset": dataset_digest(inp)},
                        toolchain=toolchain)

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
        profile_of = _point_profiles(inp)
        sweep = grid(inp.profiles, v.get("sweep"))
        total = (sum(len(f) for f in feeds_at.values()) + v["iters"] * (len(feeds_at) + len(sweep))
                 + len(v.get("streams") or []))
        done = itertools.count(1)

        def step() -> None:  # one step of the progress bar
            ctx.on_progress("validate", next(done), total)

        metrics_at: dict[str, Any] = {}
        out: dict[str, Any] = {}
        with inp.backend.load(engine.path, inp.options) as runner:
            for point, feeds in feeds_at.items():
                runner.select_profile(profile_of[point])
                actual = []
                for feed in feeds:
                    actual.append(runner.infer(feed))
                    step()
                m = metrics.accuracy(reference[point], actual, v["class_axis"], v.get("retrieval_k"),
                                     v.get("retrieval_margin") or 0.0)
                lat = runner.time(feeds[0], iters=v["iters"], warmup=v["warmup"], on_step=step)
                batch = next(iter(feeds[0].values())).shape[0]
                metrics_at[point] = {**m, **metrics.speed(lat, batch)}
            first = next(iter(feeds_at.values()))[0]
            out["memory"] = memory(runner, first)
            runner.select_profile(0)
            # samples/s by concurrent executions: one stream is the timed runs at the first point;
            # validation.streams measures more (and measures one again when it lists it)
            out["streams"] = {"1": metrics_at[next(iter(metrics_at))]["throughput"]}
            for n in v.get("streams") or []:
                out["streams"][str(n)] = runner.throughput(first, n, iters=max(v["iters"], n))
                step()
            if sweep:
                out["sweep"] = [_sweep_point(inp, runner, p, v, step) for p in sweep]
        engine_metrics = {"memory_mb": out["memory"].get("total_mb")}
        verdicts = asserts.evaluate(asserts.declared(v, _several(inp)), metrics_at, engine_metrics)
        return StageOutput(data={"metrics_at": metrics_at, **out, "assertions": verdicts,
                                 "synthetic_inputs": is_synthetic(inp.params["dataset"]["validation"]),
                                 "device": inp.backend.device_name(key.toolchain), "host": ctx.host()})

    def warnings(self, inp: StageInput) -> list[str]:
        """When this run made validation inputs that hold one value throughout: the comparison
        with the reference then says little about the engine."""
        made = inp.ctx.validation_batches or {}
        names = sorted({n for feeds in made.values() for n in constant_inputs(feeds)})
        if not names:
            return []
        return [f"dataset.validation: input(s) {', '.join(repr(n) for n in names[:4])} hold one value in every "
                "sample; validation says little there: give varied data (dataset.validation.path, or int_range)"]


def _several(inp: StageInput) -> tuple[str, ...]:
    """The profile names when there are several (validation points are then `<name>/<point>`)."""
    return tuple(p.name for p in inp.profiles) if len(inp.profiles) > 1 else ()


def memory(runner: Any, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """The runner's memory figures plus `total_mb`: weights (the engine file's size where the
    backend cannot tell its weights apart) and the working memory of one execution."""
    m = dict(runner.memory(feeds))
    weights = m.get("weights_mb") if m.get("weights_mb") is not None else m.get("engine_file_mb")
    m["total_mb"] = (weights or 0.0) + (m.get("activation_mb") or 0.0)
    return m


def _sweep_point(inp: StageInput, runner: Any, point: SweepPoint, v: dict[str, Any],
                 step: Callable[[], None]) -> dict[str, Any]:
    """One grid point timed on validation data at its shapes, on the profile that holds it."""
    specs = input_specs(inp.ctx.stage_data("source"))
    shapes = {**inp.profiles[point.profile].shapes_at("opt"), **point.shapes}
    samples = load_samples(inp.params["dataset"]["validation"], KEY, inp.ctx.root, specs, shapes, point.batch)
    feeds = batches(samples, point.batch)[0]
    runner.select_profile(point.profile)
    speed = metrics.speed(runner.time(feeds, iters=v["iters"], warmup=v["warmup"], on_step=step), point.batch)
    return {"batch": point.batch, "seq": point.seq, "profile": inp.profiles[point.profile].name,
            "latency_ms": speed["latency_p50_ms"], "latency_p99_ms": speed["latency_p99_ms"],
            "samples_per_s": speed["throughput"]}
