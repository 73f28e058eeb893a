"""What trtmake adds to a full build, and calibration reuse.

    python benchmarks/bench_overhead.py                          # resnet50 fp32 (5 runs) and int8 (2 runs)
    python benchmarks/bench_overhead.py --precisions fp32 --runs 7
    python benchmarks/bench_overhead.py --precisions int8 --int8-method percentile

1. A full build of resnet50 (fp32; int8) through `trtmake`, against a plain script (PLAIN
below, run as its own process) that makes the same onnx/onnxruntime calls on the same model file
and the same data: check the model, optimize it into an engine file (ORT_ENABLE_ALL,
optimized_model_filepath), count the layers before and after (what trtmake's report shows), run
the source model for reference outputs, load the engine with optimization off, run and compare,
time warmup + iters runs; for int8 first calibrate and quantize with onnxruntime.quantization
(2048-bin histograms as trtmake's calibrator keeps them, QDQ, per-channel weights, uint8
activations: the onnxruntime dialect; entropy, the calibrator group's default, unless
--int8-method). Model generation is in neither: both read one generated resnet50 file.

Two kinds of full build, every stage built in both (the benchmark checks the report):
- first: a fresh cache, so trtmake composes the config with Hydra (import + compose ~0.2 s);
- rebuild: the same target after the model file was replaced by another (other weights) on the
  cache of the first build: the composed plan is reused (config files unchanged) and every stage
  rebuilds because the source digest changed. This is the CI case "a new ONNX arrived".
Runs alternate (first, plain, rebuild, plain, ...) so a busy machine skews all alike; the table
gives medians and minimums (noise on a shared machine only adds time, so min/min is the steadier
ratio).

2. After the int8 build, the same target with changed build options
(graph_optimization_level=extended) and with another calibrator method: the report's calibrate
stage must say `cached` (0 s of calibration).
Writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import bench_env, loadavg, machine, run, table, work_dir, write_result  # noqa: E402

PY = sys.executable

PLAIN = r'''
import sys, time, json
import numpy as np, onnx, onnxruntime as ort
path, work, mode, calib_n, calib_bs, val_n, iters, warmup, method = sys.argv[1:10]
calib_n, calib_bs, val_n, iters, warmup = map(int, (calib_n, calib_bs, val_n, iters, warmup))

def opts(level):
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    so.log_severity_level = 3
    return so

def samples(seed, n):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size=(3, 224, 224)).astype(np.float32) for _ in range(n)]

onnx.checker.check_model(path)
model = onnx.load(path, load_external_data=False)
name = model.graph.input[0].name
src = path
if mode == "int8":
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            data = samples(1, calib_n)
            self.it = iter([{name: np.stack(data[i:i + calib_bs])} for i in range(0, calib_n, calib_bs)])
        def get_next(self):
            return next(self.it, None)

    # trtmake's calibrator keeps 2048-bin histograms (onnxruntime's entropy default is 128), whose
    # KL search dominates an INT8 build; quantize_static has no option for it, so inject the same
    import importlib
    qz = importlib.import_module("onnxruntime.quantization.quantize")  # the module, not the function
    _create = qz.create_calibrator
    same = {"num_bins": 2048, "num_quantized_bins": 128, "percentile": 99.999}
    qz.create_calibrator = lambda *a, extra_options=None, **k: _create(
        *a, extra_options={**(extra_options or {}), **same}, **k)
    src = f"{work}/qdq.onnx"
    quantize_static(path, src, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method={"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
                                      "minmax": CalibrationMethod.MinMax}[method])
so = opts("ORT_ENABLE_ALL")
so.optimized_model_filepath = f"{work}/engine.onnx"
ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
# the layer counts trtmake's report shows (fusion evidence): the engine graph parsed once
layers = (len(model.graph.node), len(onnx.load(f"{work}/engine.onnx", load_external_data=False).graph.node))
feeds = [{name: s[None]} for s in samples(2, val_n)]
ref = ort.InferenceSession(path, opts("ORT_ENABLE_BASIC"), providers=["CPUExecutionProvider"])
reference = [ref.run(None, f)[0] for f in feeds]
eng = ort.InferenceSession(f"{work}/engine.onnx", opts("ORT_DISABLE_ALL"), providers=["CPUExecutionProvider"])
actual = [eng.run(None, f)[0] for f in feeds]
a, b = np.concatenate(reference).reshape(val_n, -1), np.concatenate(actual).reshape(val_n, -1)
cos = float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).mean())
for _ in range(warmup):
    eng.run(None, feeds[0])
lat = []
for _ in range(iters):
    t = time.perf_counter()
    eng.run(None, feeds[0])
    lat.append((time.perf_counter() - t) * 1000)
print(json.dumps({"cosine": cos, "p50_ms": float(np.percentile(lat, 50)), "layers": layers}))
'''


def build(cmd: list[str], env, report: Path) -> dict:
    """A trtmake build that must produce an engine; exit 1 from a failed accuracy assertion is
    reported, not fatal (the work was done: it is the cost being measured). Returns the target's
    report entry."""
    proc = run(cmd, env, check=False)
    target = json.loads(report.read_text())["targets"][0] if report.exists() else {}
    if not target.get("engine"):
        raise SystemExit(f"no engine from {' '.join(cmd)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    if proc.returncode:
        failed = [f"{a['metric']} {a['op']} {a['value']} (actual {a['actual']:.4g})" for a in target["assertions"]
                  if not a["passed"]]
        print(f"note: {target['label']}: exit {proc.returncode}, assertions failed: {failed}")
    return target


def stages(report: Path) -> dict[str, dict]:
    target = json.loads(report.read_text())["targets"][0]
    return {s["name"]: s for s in target["stages"]}


def _all_built(target: dict, what: str) -> None:
    not_built = {s["name"]: s["status"] for s in target["stages"] if s["status"] != "built"}
    if not_built:
        raise SystemExit(f"{what}: not a full build, stages {not_built}")


def _place(model: Path, weights: Path) -> None:
    """`model` becomes a copy of `weights`: a new file (new inode) with an old mtime, so the stat
    cache must hash it and nothing takes it for a racy edit."""
    tmp = model.with_suffix(".tmp")
    shutil.copyfile(weights, tmp)
    old = time.time() - 60
    os.utime(tmp, (old, old))
    os.replace(tmp, model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="fp32 runs of each kind")
    ap.add_argument("--int8-runs", type=int, default=2)
    ap.add_argument("--calib-samples", type=int, default=32, help="resnet50_int8 ships 32 (batch 8)")
    ap.add_argument("--int8-method", default="entropy", choices=("entropy", "percentile", "minmax"))
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--name", default="overhead", help="results/<name>.json")
    args = ap.parse_args()
    with work_dir(args.work, "trtmake-bench-overhead-") as work:
        env = bench_env()
        weights = {}
        for seed in (0, 1):
            weights[seed] = work / f"resnet50_seed{seed}.onnx"
            run([PY, "-c", "import pathlib; from trtmake.models import generate; "
                 f"generate('resnet50', {{'seed': {seed}}}, pathlib.Path({str(weights[seed])!r}))"], env)
        model = work / "resnet50.onnx"
        result = {"machine": machine(), "model_bytes": weights[0].stat().st_size,
                  "calibration_samples": args.calib_samples, "int8_method": args.int8_method,
                  "goal4": {}, "goal6": {}}
        rows = []
        for prec in args.precisions.split(","):
            runs = args.runs if prec == "fp32" else args.int8_runs
            val = {"num_samples": 16, "iters": 30, "warmup": 5}
            common = [f"target=resnet50_{prec}", f"model.path={model}", "model.generator=null"]
            if prec == "int8":
                common += [f"calibrator={args.int8_method}", f"calibrator.num_samples={args.calib_samples}",
                           "calibrator.batch_size=8", "validation.assertions=[]"]
            plain_args = [prec, str(args.calib_samples), "8", str(val["num_samples"]), str(val["iters"]),
                          str(val["warmup"]), args.int8_method]
            times: dict[str, list[float]] = {"first": [], "rebuild": [], "plain": []}
            stage_s: dict[str, list[dict]] = {"first": [], "rebuild": []}
            for i in range(runs):
                cache = work / f"cache_{prec}_{i}"
                report = work / f"report_{prec}_{i}.json"
                for kind, seed in (("first", 0), ("rebuild", 1)):
                    _place(model, weights[seed])
                    started = time.perf_counter()
                    target = build([PY, "-m", "trtmake", *common, f"cache.dir={cache}", f"report.path={report}"],
                                   env, report)
                    times[kind].append(time.perf_counter() - started)
                    _all_built(target, f"{prec} {kind} run {i}")
                    stage_s[kind].append({s["name"]: s["seconds"] for s in target["stages"]})
                    plain_dir = work / f"plain_{prec}_{i}_{kind}"
                    plain_dir.mkdir()
                    started = time.perf_counter()
                    run([PY, "-c", PLAIN, str(model), str(plain_dir), *plain_args], env)
                    times["plain"].append(time.perf_counter() - started)
                    shutil.rmtree(plain_dir, ignore_errors=True)
                if i < runs - 1:
                    shutil.rmtree(cache, ignore_errors=True)
            med = {k: statistics.median(v) for k, v in times.items()}
            low = {k: min(v) for k, v in times.items()}
            result["goal4"][prec] = {
                "runs_s": times, "median_s": med, "min_s": low,
                "ratio_median": {k: med[k] / med["plain"] for k in ("first", "rebuild")},
                "ratio_min": {k: low[k] / low["plain"] for k in ("first", "rebuild")},
                "stages_s": stage_s}
            for kind in ("first", "rebuild"):
                rows.append([f"resnet50 {prec}", kind, med[kind], med["plain"], med[kind] / med["plain"],
                             low[kind], low["plain"], low[kind] / low["plain"]])
            if prec == "int8":
                result["goal6"] = calibration_reuse(common, cache, report, env, work)
        counts = ", ".join(f"{args.runs if p == 'fp32' else args.int8_runs} {p}" for p in args.precisions.split(","))
        table(f"Full build, trtmake vs a plain script (runs of each kind: {counts}; load {loadavg()})",
              ["model", "trtmake build", "trtmake median s", "plain median s", "ratio", "trtmake min s",
               "plain min s", "ratio of min"], rows)
        if result["goal6"]:
            g6 = result["goal6"]
            table("Int8 again with changed options (calibration reuse)",
                  ["run", "wall s", "calibrate stage", "calibrate s"],
                  [[k, v["wall_s"], v["calibrate"], v["calibrate_s"]] for k, v in g6.items()])
    print(f"wrote {write_result(args.name, result)}")


def calibration_reuse(common: list[str], cache: Path, report: Path, env, work: Path) -> dict:
    out = {}
    last = stages(report)
    out["last build"] = {"wall_s": None, "calibrate": last["calibrate"]["status"],
                         "calibrate_s": last["calibrate"]["seconds"]}
    other = "percentile" if "calibrator=entropy" in common else "entropy"
    for label, extra in (("graph_optimization_level=extended", ["backend.onnxruntime.graph_optimization_level=extended"]),
                         (f"calibrator={other}", [f"calibrator={other}"])):
        rep = work / "reuse.json"
        started = time.perf_counter()
        build([PY, "-m", "trtmake", *common, *extra, f"cache.dir={cache}", f"report.path={rep}"], env, rep)
        st = stages(rep)
        out[label] = {"wall_s": time.perf_counter() - started, "calibrate": st["calibrate"]["status"],
                      "calibrate_s": 0.0 if st["calibrate"]["status"] == "cached" else st["calibrate"]["seconds"],
                      "stages": {k: v["status"] for k, v in st.items()}}
    return out


if __name__ == "__main__":
    main()
