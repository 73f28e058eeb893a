"""What a build buys. For resnet50 in FP32, FP16 and INT8 at profiles b1 and b8,
the engine trtmake built against a plain onnxruntime session on the unoptimized source model.

    python benchmarks/bench_engine_speed.py                       # 3 precisions x 2 batch sizes
    python benchmarks/bench_engine_speed.py --calib-samples 16    # fewer INT8 calibration samples

Each target is built with `trtmake target=resnet50_<precision> profile=<b1|b8>` (validation.iters
and warmup lowered: this measurement is the benchmark's own). Then, in this process, two
onnxruntime CPU sessions run the same input at the profile's opt batch, interleaved run by run
so a busy machine skews both alike:
  - engine:   the engine file from the report, loaded as trtmake loads it (optimization off),
  - baseline: the source model in a plain `InferenceSession(path)` with default options
              (onnxruntime optimizes on load; FP32).
The table also shows the p50 trtmake's own validation measured (report `metrics`).
Writes benchmarks/results/engine_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import bench_env, loadavg, machine, run, table, work_dir, write_result  # noqa: E402

PY = sys.executable


def interleaved(engine_path: str, source_path: str, batch: int, iters: int, warmup: int) -> dict[str, dict]:
    import numpy as np
    import onnxruntime as ort

    off = ort.SessionOptions()
    off.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    off.log_severity_level = 3
    sessions = {"engine": ort.InferenceSession(engine_path, off, providers=["CPUExecutionProvider"]),
                "baseline": ort.InferenceSession(source_path, providers=["CPUExecutionProvider"])}
    name = sessions["baseline"].get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    engine_input = sessions["engine"].get_inputs()[0]
    feeds = {k: {(engine_input.name if k == "engine" else name): x} for k in sessions}
    for _ in range(warmup):
        for k, s in sessions.items():
            s.run(None, feeds[k])
    lat: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(iters):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, feeds[k])
            lat[k].append((time.perf_counter() - t) * 1000)
    return {k: {"p50_ms": statistics.median(v), "throughput": batch * 1000 / statistics.mean(v)}
            for k, v in lat.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precisions", default="fp32,fp16,int8")
    ap.add_argument("--profiles", default="b1,b8")
    ap.add_argument("--iters", type=int, default=20, help="timed runs per session (interleaved)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--calib-samples", type=int, default=32, help="resnet50_int8 ships 32")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    with work_dir(args.work, "trtmake-bench-speed-") as work:
        env = bench_env()
        cache = work / "cache"
        model = work / "resnet50.onnx"
        run([PY, "-c", f"from trtmake.models import generate; generate('resnet50', {{'seed': 0}}, __import__('pathlib').Path('{model}'))"], env)
        rows, results = [], []
        host = machine()
        for prec in args.precisions.split(","):
            for prof in args.profiles.split(","):
                batch = 8 if prof == "b8" else 1
                report = work / f"report_{prec}_{prof}.json"
                cmd = [PY, "-m", "trtmake", f"target=resnet50_{prec}", f"profile={prof}", f"model.path={model}",
                       "model.generator=null", "validation.iters=10", "validation.warmup=2",
                       f"cache.dir={cache}", f"report.path={report}"]
                if prec == "int8":
                    cmd.append(f"calibrator.num_samples={args.calib_samples}")
                started = time.perf_counter()
                proc = run(cmd, env, check=False)
                build_s = time.perf_counter() - started
                data = json.loads(report.read_text())["targets"][0]
                if data.get("engine") is None:
                    print(f"resnet50_{prec} {prof}: no engine ({data.get('error')})\n{proc.stderr[-1500:]}")
                    continue
                m = data["metrics"]
                speed = interleaved(data["engine"]["path"], str(model), batch, args.iters, args.warmup)
                entry = {"precision": prec, "profile": prof, "batch": batch, "build_s": build_s,
                         "trtmake_ok": data["ok"], "cosine": m.get("cosine_similarity"),
                         "top1_agreement": m.get("top1_agreement"), "report_p50_ms": m.get("latency_p50_ms"),
                         "report_throughput": m.get("throughput"), **{f"{k}_{n}": v for k, s in speed.items()
                                                                       for n, v in s.items()},
                         "layers": data.get("layer_info", {})}
                entry["speedup_p50"] = entry["baseline_p50_ms"] / entry["engine_p50_ms"]
                results.append(entry)
                rows.append([f"resnet50 {prec}", batch, entry["engine_p50_ms"], entry["engine_throughput"],
                             entry["baseline_p50_ms"], entry["baseline_throughput"], entry["speedup_p50"],
                             entry["report_p50_ms"], entry["cosine"], entry["top1_agreement"]])
        table(f"Engine vs plain onnxruntime on the source model (CPU, {args.iters} interleaved runs, "
              f"load {loadavg()})",
              ["target", "batch", "engine p50 ms", "engine img/s", "plain ORT p50 ms", "plain ORT img/s",
               "speedup", "trtmake-reported p50 ms", "cosine", "top1 agree"], rows)
    print(f"wrote {write_result('engine_speed', {'machine': host, 'calibration_samples': args.calib_samples, 'iters': args.iters, 'results': results})}")


if __name__ == "__main__":
    main()
