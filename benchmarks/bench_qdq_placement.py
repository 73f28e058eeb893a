"""TensorRT-dialect Q/DQ placement on EfficientNet-Lite0: Q/DQ count and top-1 agreement vs FP32.

    python benchmarks/bench_qdq_placement.py            # ~3 min after the one-off calibration

Calibration: the shipped target's data (64 random photo crops of scikit-image, seed 1, 2048-bin
histograms), collected once into --work. Validation: the shipped `photos` validation list (128
crops FP32 is confident about). Each method's TensorRT-dialect graph is run the way the TensorRT
simulator runs an engine: onnxruntime at the basic level (Q/DQ kept, int8 simulated in float).
Rows: entropy, minmax, percentile (99.99, the shipped target's), and each with the classifier
Gemm quantized too (precision.quantize_gemm=true). Writes benchmarks/results/qdq_placement.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import machine, table, write_result  # noqa: E402

from trtmake.image_dataset import preprocess, read_crop_list, render_crops, skimage_crops  # noqa: E402
from trtmake.precision.calibration import collect_statistics, load_stats, prepare_model  # noqa: E402
from trtmake.precision.int8 import quantize  # noqa: E402

MODEL = Path("/work/shared/data/models/efficientnet_lite0.onnx")
SPEC = {"resize": 224, "layout": "NCHW", "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3, "dtype": "float32"}
METHODS = (("entropy", None), ("minmax", None), ("percentile", 99.99))


def session(path: Path, level: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                     "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def infer(path: Path, x: np.ndarray, level: str = "basic") -> np.ndarray:
    sess = session(path, level)
    return np.concatenate([sess.run(None, {"input": x[i:i + 16]})[0] for i in range(0, len(x), 16)])


def agreement(ref: np.ndarray, out: np.ndarray) -> dict:
    cos = (ref * out).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1))
    return {"top1_agreement": float((ref.argmax(1) == out.argmax(1)).mean()), "cosine_mean": float(cos.mean()),
            "cosine_min": float(cos.min())}


def qdq_counts(path: Path) -> dict:
    ops = Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)
    return {"quantize_linear": ops["QuantizeLinear"], "dequantize_linear": ops["DequantizeLinear"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "trtmake-bench-qdq")
    ap.add_argument("--calibration", type=int, default=64)
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    prepared = work / "prepared.onnx"
    if not prepared.exists():
        prepare_model(MODEL, prepared)
    stats_path = work / f"stats_{args.calibration}.npz"
    if not stats_path.exists():
        x = np.stack([preprocess(c, SPEC) for c in skimage_crops(args.calibration, 1)])
        stats = collect_statistics(MODEL, ({"input": x[i:i + 8]} for i in range(0, len(x), 8)), "minmax",
                                   num_bins=2048, work_dir=work / "calibration")
        stats.save(stats_path)
    stats = load_stats(stats_path)
    boxes = read_crop_list(ROOT / "engine_recipes" / "dataset" / "photos" / "validation.json")
    val = np.stack([preprocess(c, SPEC) for c in render_crops(boxes)])
    ref = infer(MODEL, val)

    results, rows = [], []
    for gemm in (False, True):
        for method, pct in METHODS:
            out = work / f"{method}_{'gemm' if gemm else 'default'}.onnx"
            derived = stats.with_method(method, percentile=pct)
            summary = quantize(prepared, derived, "tensorrt", method=method, percentile=pct, preprocess=False,
                               quantize_gemm=gemm, out_path=out)
            row = {"method": method if pct is None else f"{method} {pct}", "quantize_gemm": gemm, **qdq_counts(out),
                   **agreement(ref, infer(out, val)), "float_nodes": summary.nodes}
            results.append(row)
            rows.append([row["method"], gemm, row["quantize_linear"], row["dequantize_linear"],
                         row["top1_agreement"], row["cosine_mean"], row["cosine_min"]])
            print(row, flush=True)
    table(f"EfficientNet-Lite0, TensorRT dialect, {len(val)} confident photo crops (onnxruntime basic level)",
          ["calibrator", "quantize_gemm", "Q", "DQ", "top-1 vs FP32", "cosine", "cosine min"], rows)
    path = write_result("qdq_placement", {**machine(), "validation_samples": len(val),
                                          "calibration_samples": args.calibration, "rows": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
