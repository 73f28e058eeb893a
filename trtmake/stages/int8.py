"""INT8 by explicit quantization: a cached calibration stage (dialect-independent statistics)
and the precision stage's QDQ graph in the backend's dialect, with optional auto_exclude."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trtmake.datasets import batches, is_synthetic, load_samples, source_digest
from trtmake.keys import StageKey
from trtmake.stages.base import Context, Stage, StageOutput
from trtmake.stages.source import _versions

KEY = "dataset.calibration"


def _calibration_shapes(ctx: Context) -> dict[str, list[int]]:
    """The profile's opt shapes with the batch dim set to calibrator.batch_size where it is dynamic."""
    from trtmake.onnx_info import input_specs
    from trtmake.stages.build import target_profile

    batch = ctx.target["calibrator"]["batch_size"]
    specs = {s.name: s for s in input_specs(ctx.stage_data("source"))}
    out = {}
    for name, shape in target_profile(ctx).shapes_at("opt").items():
        dynamic = not isinstance(specs[name].dims[0], int) or specs[name].dims[0] <= 0
        out[name] = [batch if dynamic else shape[0], *shape[1:]]
    return dict(sorted(out.items()))


class CalibrateStage(Stage):
    name = "calibrate"
    version = 1

    def key(self, ctx: Context) -> StageKey:
        c = ctx.target["calibrator"]
        config = {"method": c["method"], "num_samples": c["num_samples"], "num_bins": c["num_bins"],
                  "num_quantized_bins": c["num_quantized_bins"], "shapes": _calibration_shapes(ctx)}
        if c["method"] == "percentile":
            config["percentile"] = c["percentile"]
        dataset = source_digest(ctx.target["dataset"]["calibration"], KEY, ctx.target.project_root, ctx.cache.stat)
        return StageKey(self.name, self.version, config=config,
                        inputs={"source": ctx.artifact("source").digest, "dataset": dataset},
                        toolchain=_versions("onnxruntime"))

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        from trtmake.onnx_info import input_specs
        from trtmake.precision.calibration import collect_statistics, save_stats

        c = ctx.target["calibrator"]
        shapes = key.config["shapes"]
        src = ctx.target["dataset"]["calibration"]
        samples = load_samples(src, KEY, ctx.target.project_root, input_specs(ctx.stage_data("source")),
                               shapes, c["num_samples"])
        first = next(iter(shapes.values()))[0]
        feeds = batches(samples, first)
        stats = collect_statistics(ctx.artifact("source").path, iter(feeds), c["method"], num_bins=c["num_bins"],
                                   num_quantized_bins=c["num_quantized_bins"], percentile=c["percentile"],
                                   work_dir=workdir)
        out = workdir / "stats.npz"
        save_stats(stats, out)
        return StageOutput(files={"stats": out}, data={
            "method": c["method"], "samples": len(samples), "batches": len(feeds),
            "tensors": len(stats.tensors), "synthetic": is_synthetic(src)})


def precision_config(ctx: Context) -> dict[str, Any]:
    from trtmake.stages.precision import dialect_for

    p, c = ctx.target["precision"], ctx.target["calibrator"]
    cfg: dict[str, Any] = {"mode": "int8", "dialect": dialect_for(ctx.backend.name), "method": c["method"],
                           "per_channel": p["per_channel"], "exclude_nodes": sorted(p["exclude_nodes"]),
                           "exclude_op_types": sorted(p["exclude_op_types"])}
    if c["method"] == "percentile":
        cfg["percentile"] = c["percentile"]
    if p["auto_exclude"]["enabled"]:
        from trtmake.stages.validate import _points

        cfg["auto_exclude"] = dict(p["auto_exclude"])
        cfg["auto_exclude"]["validation"] = {"num_samples": ctx.target["validation"]["num_samples"],
                                             "points": {"opt": _points(ctx).get("opt")}}
    return cfg


def auto_exclude_inputs(ctx: Context) -> dict[str, str]:
    """auto_exclude measures accuracy on the validation data: its digest joins the key."""
    from trtmake.stages.validate import dataset_digest

    return {"validation_data": dataset_digest(ctx)} if ctx.target["precision"]["auto_exclude"]["enabled"] else {}


def run_quantize(ctx: Context, key: StageKey, src: Path, out: Path, workdir: Path) -> dict[str, Any]:
    from trtmake.precision.calibration import load_stats
    from trtmake.precision.int8 import quantize

    cfg = key.config
    stats = load_stats(ctx.artifact("calibrate.stats").path)

    def write(excluded: tuple[str, ...], path: Path):
        return quantize(src, stats, cfg["dialect"], method=cfg["method"], per_channel=cfg["per_channel"],
                        exclude_nodes=(*cfg["exclude_nodes"], *excluded), exclude_op_types=cfg["exclude_op_types"],
                        percentile=cfg.get("percentile"), out_path=path)

    data: dict[str, Any] = {}
    extra: tuple[str, ...] = ()
    if "auto_exclude" in cfg:
        result = _auto_exclude(ctx, cfg, src, write, workdir)
        extra = tuple(result.excluded)
        data["auto_exclude"] = result.to_dict()
    summary = write(extra, out)
    if cfg["dialect"] == "tensorrt":
        import onnx

        from trtmake.precision.qdq_check import assert_tensorrt_dialect

        assert_tensorrt_dialect(onnx.load(str(out)), where=f"precision ({ctx.target.name})")
    return {**summary.to_dict(), "mode": "int8", **data}


def _auto_exclude(ctx: Context, cfg: dict[str, Any], src: Path, write, workdir: Path):
    """Greedy sensitivity search: which layers to leave in float to meet the accuracy target."""
    import onnx

    from trtmake import metrics
    from trtmake.backends.onnxruntime import OrtRunner
    from trtmake.precision.int8 import quantizable_nodes
    from trtmake.precision.sensitivity import auto_exclude
    from trtmake.stages.validate import validation_batches

    ae = cfg["auto_exclude"]
    feeds = validation_batches(ctx).get("opt") or next(iter(validation_batches(ctx).values()))
    with OrtRunner(src, {}, level="basic") as ref_runner:
        reference = [ref_runner.infer(f) for f in feeds]
    class_axis = ctx.target["validation"]["class_axis"]
    excluded_already = set(cfg["exclude_nodes"])
    candidates = [n for n in quantizable_nodes(onnx.load(str(src), load_external_data=False))
                  if n not in excluded_already][: ae["max_candidates"]]

    def evaluate(excluded: tuple[str, ...]) -> float:
        path = workdir / "probe.onnx"
        write(excluded, path)
        with OrtRunner(path, {}, level="basic") as runner:
            actual = [runner.infer(f) for f in feeds]
        m = metrics.accuracy(reference, actual, class_axis)
        value = m.get(ae["metric"])
        return float(value) if value is not None else float(np.nan)

    return auto_exclude(candidates, evaluate, ae["target"], ae["max_layers"], ae["strategy"])
