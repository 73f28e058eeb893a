"""Entropy (KL) calibration ranges for ResNet-50: onnxruntime's search against trtmake's.

    python benchmarks/bench_entropy.py                # ~1 min after the one-off calibration
    python benchmarks/bench_entropy.py --ort-tensors 0   # onnxruntime on every tensor (~10 min)

The statistics are those of the shipped resnet50_int8 target's calibrate stage: the generated
ResNet-50 (seeded weights), 32 seeded normal inputs in batches of 8, 2048-bin histograms of all
its float tensors; calibrated once into --work and reused. Timed: deriving every tensor's
entropy range (num_quantized_bins 128) from those histograms, which is what the precision stage
does for calibrator=entropy:
- onnxruntime: HistogramCollector's search (Python loops per candidate window), on a sample of
  --ort-tensors tensors (every 10th or so), extrapolated to all of them;
- trtmake serial: trtmake.precision.entropy in this process (workers=1);
- trtmake pool: the same in a process pool sized to the cores (what the stage runs).
Every sampled tensor's range must equal onnxruntime's. Writes benchmarks/results/entropy.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import loadavg, machine, table, write_result  # noqa: E402

from trtmake.precision.calibration import collect_statistics, load_stats  # noqa: E402
from trtmake.precision.entropy import default_workers  # noqa: E402
from trtmake.precision.stats import derive_ranges  # noqa: E402

LEVELS = 128


def statistics_of_resnet50(work: Path, samples: int, batch: int):
    path = work / "resnet50_stats.npz"
    if path.exists():
        return load_stats(path), 0.0
    from trtmake.models import generate

    work.mkdir(parents=True, exist_ok=True)
    model = work / "resnet50.onnx"
    if not model.exists():
        generate("resnet50", {}, model)
    x = np.random.default_rng(0).standard_normal((samples, 3, 224, 224)).astype(np.float32)
    started = time.perf_counter()
    stats = collect_statistics(model, ({"input": x[i:i + batch]} for i in range(0, samples, batch)), "minmax",
                               num_bins=2048, work_dir=work / "calibration")
    seconds = time.perf_counter() - started
    stats.save(path)
    return stats, seconds


def onnxruntime_ranges(stats, names: list[str]) -> tuple[dict, float]:
    from onnxruntime.quantization.calibrate import HistogramCollector

    collector = HistogramCollector("entropy", False, stats.num_bins, LEVELS, 99.999, "same")
    out, started = {}, time.perf_counter()
    for name in names:
        t = stats.tensors[name]
        low, high = collector.get_entropy_threshold((t.hist, t.edges, np.float32(t.min), np.float32(t.max), None),
                                                    LEVELS)
        out[name] = (float(low), float(high))
    return out, time.perf_counter() - started


def timed(fn, runs: int) -> tuple[dict, list[float]]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/trtmake-bench-entropy"))
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ort-tensors", type=int, default=12, help="tensors onnxruntime searches (0: all)")
    args = ap.parse_args()

    info = machine()
    stats, calibrate_s = statistics_of_resnet50(args.work, args.samples, args.batch)
    names = sorted(stats.tensors)
    sample = names if args.ort_tensors <= 0 else names[:: max(1, len(names) // args.ort_tensors)][: args.ort_tensors]
    bins = [t.hist.size for t in stats.tensors.values()]
    print(f"ResNet-50: {len(names)} tensors, {min(bins)}-{max(bins)} histogram bins; load average {loadavg()}",
          flush=True)

    workers = default_workers()
    serial, serial_t = timed(lambda: derive_ranges(stats, "entropy", num_quantized_bins=LEVELS, workers=1), args.runs)
    pooled, pooled_t = timed(lambda: derive_ranges(stats, "entropy", num_quantized_bins=LEVELS), args.runs)
    theirs, ort_s = onnxruntime_ranges(stats, sample)
    ort_all = ort_s / len(sample) * len(names)
    mismatched = [n for n in sample if not np.allclose(theirs[n], serial[n], rtol=1e-6)]
    if pooled != serial:
        raise SystemExit("the process pool's ranges differ from the serial ones")

    rows = [
        ["onnxruntime HistogramCollector" + ("" if len(sample) == len(names) else f" ({len(sample)} tensors, scaled)"),
         1, ort_all, ort_all / len(names) * 1e3, 1.0],
        ["trtmake serial", 1, statistics.median(serial_t), statistics.median(serial_t) / len(names) * 1e3,
         ort_all / statistics.median(serial_t)],
        ["trtmake pool", workers, statistics.median(pooled_t), statistics.median(pooled_t) / len(names) * 1e3,
         ort_all / statistics.median(pooled_t)],
    ]
    table(f"Entropy ranges of {len(names)} ResNet-50 tensors (median of {args.runs}; load {loadavg()})",
          ["search", "processes", "seconds", "ms per tensor", "speedup"], rows)
    print(f"ranges equal to onnxruntime's on {len(sample) - len(mismatched)}/{len(sample)} sampled tensors")
    path = write_result("entropy", {
        **info, "tensors": len(names), "histogram_bins": [min(bins), max(bins)], "num_quantized_bins": LEVELS,
        "calibrate_seconds": round(calibrate_s, 1) if calibrate_s else "reused",
        "onnxruntime": {"tensors_timed": len(sample), "seconds": ort_s, "seconds_all_tensors": ort_all},
        "trtmake_serial_seconds": serial_t, "trtmake_pool_seconds": pooled_t, "pool_workers": workers,
        "equal_to_onnxruntime": f"{len(sample) - len(mismatched)}/{len(sample)}", "mismatched": mismatched,
    })
    print(f"wrote {path}")
    if mismatched:
        raise SystemExit(f"ranges differ from onnxruntime's on {mismatched}")


if __name__ == "__main__":
    main()
