"""INT8 by explicit quantization: a cached calibration stage (dialect-independent statistics)
and the precision stage's QDQ graph in the backend's dialect, with optional auto_exclude."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trtmake import metrics
from trtmake.backends.onnxruntime import OrtRunner
from trtmake.datasets import batches, is_synthetic, load_samples, source_digest
from trtmake.errors import UserError
from trtmake.heavy import lazy_import
from trtmake.keys import StageKey, toolchain_versions
from trtmake.onnx_info import input_specs
from trtmake.stages.base import Stage, StageInput, StageOutput

calibration = lazy_import("trtmake.precision.calibration")
int8 = lazy_import("trtmake.precision.int8")
qdq_check = lazy_import("trtmake.precision.qdq_check")
sensitivity = lazy_import("trtmake.precision.sensitivity")

KEY = "dataset.calibration"
# what the int8 precision key reads besides the `precision` group
INT8_PARAMS = ("calibrator", "validation.num_samples", "validation.class_axis", "dataset.calibration",
               "dataset.validation", "dataset.selection")


def _calibration_shapes(inp: StageInput) -> dict[str, list[int]]:
    """The profile's opt shapes with the batch dim set to calibrator.batch_size where it is dynamic."""
    batch = inp.params["calibrator"]["batch_size"]
    specs = {s.name: s for s in input_specs(inp.ctx.stage_data("source"))}
    out = {}
    for name, shape in inp.profile.shapes_at("opt").items():
        dynamic = not isinstance(specs[name].dims[0], int) or specs[name].dims[0] <= 0
        out[name] = [batch if dynamic else shape[0], *shape[1:]]
    return dict(sorted(out.items()))


class CalibrateStage(Stage):
    """Runs the model over the calibration data once and records every float tensor's min/max and
    histogram. Method-independent: calibrator.method/percentile/num_quantized_bins only shape how
    the precision stage derives ranges from the histograms, so they are not part of this key."""

    name = "calibrate"
    version = 2
    params = ("precision.mode", "calibrator", "dataset.calibration")

    def applies(self, params: dict[str, Any]) -> bool:
        return params["precision"]["mode"] == "int8"

    def key(self, inp: StageInput) -> StageKey:
        c, ctx = inp.params["calibrator"], inp.ctx
        config = {"num_samples": c["num_samples"], "num_bins": c["num_bins"], "shapes": _calibration_shapes(inp)}
        dataset = source_digest(inp.params["dataset"]["calibration"], KEY, ctx.root, ctx.cache.stat)
        return StageKey(self.name, self.version, config=config,
                        inputs={"source": inp.artifact("source").digest, "dataset": dataset},
                        toolchain=toolchain_versions("onnxruntime"))

    def run(self, inp: StageInput, key: StageKey, workdir: Path) -> StageOutput:
        c, ctx = inp.params["calibrator"], inp.ctx
        shapes = key.config["shapes"]
        src = inp.params["dataset"]["calibration"]
        samples = load_samples(src, KEY, ctx.root, input_specs(ctx.stage_data("source")), shapes, c["num_samples"])
        feeds = batches(samples, next(iter(shapes.values()))[0])
        # "minmax": the stored ranges are the cheap ones; every method is derived from the histograms
        stats = calibration.collect_statistics(inp.artifact("source").path, iter(feeds), "minmax",
                                               num_bins=c["num_bins"], work_dir=workdir)
        out = workdir / "stats.npz"
        calibration.save_stats(stats, out)
        return StageOutput(files={"stats": out}, data={
            "samples": len(samples), "batches": len(feeds), "num_bins": c["num_bins"],
            "tensors": len(stats.tensors), "synthetic": is_synthetic(src)})


# bump when trtmake/precision's derivation of ranges or of QDQ graphs changes, so that int8
# graphs made by older code are rebuilt
QUANTIZER_VERSION = 1


def int8_dialect(inp: StageInput) -> str:
    """precision.dialect, where `auto` is the backend's: the tensorrt dialect can be built and
    judged on the onnxruntime backend too (its graph is what a TensorRT engine executes)."""
    chosen = str(inp.params["precision"].get("dialect", "auto"))
    if chosen == "auto":
        return inp.backend.quantization_dialect
    if chosen not in int8.DIALECTS:
        raise UserError(f"precision.dialect: unknown QDQ dialect '{chosen}'; choose auto or one of {list(int8.DIALECTS)}")
    return int8.check_dialect(chosen)


def precision_config(inp: StageInput) -> dict[str, Any]:
    """The int8 precision key: the calibrator's method and its parameters live here (ranges are
    derived from the cached histograms), so switching method never re-runs calibration."""
    p, c = inp.params["precision"], inp.params["calibrator"]
    cfg: dict[str, Any] = {"mode": "int8", "quantizer": QUANTIZER_VERSION, "dialect": int8_dialect(inp),
                           "method": c["method"],
                           # per-channel weights need opset 13 (source normalization upgrades when it can)
                           "per_channel": bool(p["per_channel"]) and _source_opset(inp) >= 13,
                           "exclude_nodes": sorted(p["exclude_nodes"]),
                           "exclude_op_types": sorted(p["exclude_op_types"])}
    if cfg["dialect"] == "tensorrt":
        cfg["quantize_gemm"] = bool(p["quantize_gemm"])
    else:  # the weights' type the backend's int8 kernels compute exactly (onnxruntime: by CPU)
        cfg["weight_type"] = inp.backend.int8_weight_type(inp.options)
    if c["method"] == "percentile":
        cfg["percentile"] = float(c["percentile"])
    if c["method"] == "entropy":
        cfg["num_quantized_bins"] = int(c["num_quantized_bins"])
    if p["auto_exclude"]["enabled"]:
        cfg["auto_exclude"] = dict(p["auto_exclude"])
        cfg["auto_exclude"]["selection"] = {"num_samples": inp.params["validation"]["num_samples"],
                                            "shapes": _calibration_shapes(inp),
                                            "source": _selection_source(inp)[1]}
        # onnxruntime level of auto_exclude's trial runs: the engine's own level on the onnxruntime
        # backend (at "all", QDQ fuses into the int8 kernels the engine runs: faithful and fast);
        # elsewhere "basic" (Q/DQ simulated in float, a proxy for TensorRT's int8)
        cfg["auto_exclude"]["probe_level"] = inp.backend.proxy_level(inp.options)
    return cfg


def _source_opset(inp: StageInput) -> int:
    return int(inp.ctx.stage_data("source").get("opset") or 13)


SELECTION_SEED_OFFSET = 1_000_003


def _selection_source(inp: StageInput) -> tuple[dict[str, Any], str]:
    """Where auto_exclude measures: never the validation samples the assertions judge.

    dataset.selection when set; else for seeded sources (synthetic, random skimage crops) the
    validation source with another seed, i.e. fresh samples of the same distribution; else
    (folders, crop lists) the calibration data (the held-out validation data stays unseen)."""
    dataset = inp.params["dataset"]
    chosen = dataset.get("selection")
    if chosen is not None:
        return dict(chosen), "dataset.selection"
    val = dict(dataset["validation"])
    if val["kind"] == "synthetic" or (val["kind"] == "skimage" and not val.get("path")):
        val["seed"] = int(val["seed"]) + SELECTION_SEED_OFFSET
        return val, f"dataset.validation with seed {val['seed']}"
    return dict(dataset["calibration"]), "dataset.calibration"


def auto_exclude_inputs(inp: StageInput) -> dict[str, str]:
    """auto_exclude measures accuracy on the selection data: its digest joins the key."""
    if not inp.params["precision"]["auto_exclude"]["enabled"]:
        return {}
    return {"selection_data": source_digest(_selection_source(inp)[0], "dataset.selection", inp.ctx.root,
                                            inp.ctx.cache.stat)}


def run_quantize(inp: StageInput, key: StageKey, src: Path, out: Path, workdir: Path) -> dict[str, Any]:
    cfg = key.config
    # the method's ranges, derived once from the cached histograms; the progress bar counts tensors
    stats = calibration.load_stats(inp.artifact("calibrate.stats").path).with_method(
        cfg["method"], percentile=cfg.get("percentile"), num_quantized_bins=cfg.get("num_quantized_bins"),
        on_progress=lambda done, total: inp.ctx.on_progress("precision", done, total))
    # the graph calibration saw, prepared once: every auto_exclude trial quantizes it as is
    prepared = calibration.prepare_model(src, workdir / "prepared" / src.name) if stats.preprocessed else src

    def write(excluded: tuple[str, ...], path: Path):
        return int8.quantize(prepared, stats, cfg["dialect"], method=cfg["method"], per_channel=cfg["per_channel"],
                             exclude_nodes=(*cfg["exclude_nodes"], *excluded), exclude_op_types=cfg["exclude_op_types"],
                             quantize_gemm=cfg.get("quantize_gemm", False), weight_type=cfg.get("weight_type", "int8"),
                             preprocess=False, out_path=path)

    data: dict[str, Any] = {}
    extra: tuple[str, ...] = ()
    if "auto_exclude" in cfg:
        result, info = _auto_exclude(inp, cfg, prepared, write, workdir)
        extra = tuple(result.excluded)
        data["auto_exclude"] = {**result.to_dict(), **info}
    summary = write(extra, out)
    if cfg["dialect"] == "tensorrt":
        import onnx

        qdq_check.assert_tensorrt_dialect(onnx.load(str(out)), where=f"precision ({inp.ctx.name})")
    float_layers = sum(summary.nodes.get(op, {}).get("float", 0) for op in int8.WEIGHTED_OP_TYPES)
    return {**summary.to_dict(), "mode": "int8", "float_layers": float_layers, **data}


def _auto_exclude(inp: StageInput, cfg: dict[str, Any], model: Path, write, workdir: Path):
    """Greedy sensitivity search over every quantizable layer: which to leave in float to meet
    the accuracy target on the selection split (never the validation split)."""
    import onnx

    started = time.perf_counter()
    ae = cfg["auto_exclude"]
    shapes = ae["selection"]["shapes"]
    selection, described = _selection_source(inp)
    samples = load_samples(selection, "dataset.selection", inp.ctx.root,
                           input_specs(inp.ctx.stage_data("source")), shapes, ae["selection"]["num_samples"])
    feeds = batches(samples, next(iter(shapes.values()))[0])
    with OrtRunner(model, level="basic") as ref_runner:
        reference = [ref_runner.infer(f) for f in feeds]
    class_axis = inp.params["validation"]["class_axis"]
    excluded_already = set(cfg["exclude_nodes"])
    candidates = [n for n in int8.quantizable_nodes(onnx.load(str(model), load_external_data=False))
                  if n not in excluded_already]
    if ae.get("max_candidates", 0) > 0:  # a cost cap: only the first N layers in graph order
        candidates = candidates[: ae["max_candidates"]]
    probe = workdir / "probe.onnx"

    def evaluate(excluded: tuple[str, ...]) -> tuple[float, float]:
        write(excluded, probe)
        with OrtRunner(probe, level=ae["probe_level"]) as runner:
            actual = [runner.infer(f) for f in feeds]
        m = metrics.accuracy(reference, actual, class_axis)
        value = m.get(ae["metric"])
        signal = m.get("cosine_similarity", value)
        return (float(value) if value is not None else float("nan"),
                float(signal) if signal is not None else float("nan"))

    result = sensitivity.auto_exclude(candidates, evaluate, ae["target"], ae["max_layers"], ae["strategy"])
    probe.unlink(missing_ok=True)
    info = {"candidates": len(candidates), "metric": ae["metric"], "selection": described,
            "selection_samples": len(samples), "seconds": round(time.perf_counter() - started, 1)}
    return result, info
