"""Accuracy and speed metrics of an engine against reference outputs.

The metric names are read by config checks on the up-to-date path: numpy loads only when a
metric is computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ACCURACY = ("max_abs_error", "mean_abs_error", "cosine_similarity", "cosine_similarity_min", "top1_agreement")
SPEED = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "throughput")


def accuracy(reference: list[dict[str, np.ndarray]], actual: list[dict[str, np.ndarray]],
             class_axis: int = -1) -> dict[str, float | dict]:
    """Worst case over outputs for each metric; per-output values under `per_output`."""
    import numpy as np

    per_output: dict[str, dict[str, float]] = {}
    for name in reference[0]:
        ref = np.concatenate([b[name] for b in reference]).astype(np.float64)
        act = np.concatenate([b[name] for b in actual]).astype(np.float64)
        if ref.shape != act.shape:
            per_output[name] = {"shape_mismatch": 1.0}
            continue
        diff = np.abs(ref - act)
        m = {"max_abs_error": float(diff.max()) if diff.size else 0.0,
             "mean_abs_error": float(diff.mean()) if diff.size else 0.0}
        flat_r, flat_a = ref.reshape(len(ref), -1), act.reshape(len(act), -1)
        cos = _cosine_rows(flat_r, flat_a)
        m["cosine_similarity"] = float(cos.mean())
        m["cosine_similarity_min"] = float(cos.min())
        if ref.ndim >= 2 and ref.shape[class_axis] > 1:
            m["top1_agreement"] = float((ref.argmax(axis=class_axis) == act.argmax(axis=class_axis)).mean())
        if not np.isfinite(act).all():
            m["non_finite"] = float((~np.isfinite(act)).sum())
        per_output[name] = m
    merged: dict[str, float | dict] = {}
    for metric, worst in (("max_abs_error", max), ("mean_abs_error", max), ("cosine_similarity", min),
                          ("cosine_similarity_min", min), ("top1_agreement", min)):
        values = [m[metric] for m in per_output.values() if metric in m]
        if values:
            merged[metric] = worst(values)
    if any("shape_mismatch" in m for m in per_output.values()):
        merged["shape_mismatch"] = 1.0
    merged["per_output"] = per_output
    return merged


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import numpy as np

    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = den == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(both_zero, 1.0, num / np.where(both_zero, 1.0, den))
    return np.nan_to_num(cos, nan=-1.0)


def speed(latencies_ms: list[float], batch_size: int) -> dict[str, float]:
    import numpy as np

    lat = np.asarray(latencies_ms, dtype=np.float64)
    return {
        "latency_p50_ms": float(np.percentile(lat, 50)),
        "latency_p90_ms": float(np.percentile(lat, 90)),
        "latency_p99_ms": float(np.percentile(lat, 99)),
        "latency_mean_ms": float(lat.mean()),
        "throughput": float(batch_size * 1000.0 / lat.mean()),
        "batch_size": batch_size,
        "timed_runs": len(lat),
    }
