"""Accuracy and speed metrics of an engine against reference outputs.

The metric names are read by config checks on the up-to-date path: numpy loads only when a
metric is computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ACCURACY = ("max_abs_error", "mean_abs_error", "cosine_similarity", "cosine_similarity_min", "top1_agreement",
            "retrieval_agreement")
SPEED = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "throughput")
ENGINE = ("memory_mb",)  # measured once per engine, not per validation point (metrics.memory.total_mb)


def class_axis_of(shape: tuple[int, ...], class_axis: int | None) -> tuple[int | None, str]:
    """The axis top1_agreement takes the argmax over, or None and why there is none.

    `class_axis` None: the only axis after the batch axis longer than 1, so [N, 1000, 1, 1] and
    [N, 1, 1000] classify over their 1000 classes."""
    dims = list(shape)
    if len(dims) < 2:
        return None, f"it has shape {dims}, no axis besides the batch"
    if class_axis is not None:
        if not -len(dims) <= class_axis < len(dims):
            return None, f"validation.class_axis={class_axis} is out of range for shape {dims}"
        if dims[class_axis] <= 1:
            return None, f"axis {class_axis} of shape {dims} has one entry; set validation.class_axis to its class axis"
        return class_axis, ""
    long = [axis for axis in range(1, len(dims)) if dims[axis] > 1]
    if len(long) == 1:
        return long[0], ""
    if not long:
        return None, f"shape {dims} has no axis longer than 1 besides the batch"
    return None, (f"shape {dims} has several axes longer than 1 ({long}); set validation.class_axis "
                  "to the class axis")


def accuracy(reference: list[dict[str, np.ndarray]], actual: list[dict[str, np.ndarray]],
             class_axis: int | None = None, retrieval_k: int | None = None,
             retrieval_margin: float = 0.0) -> dict[str, float | dict]:
    """Worst case over outputs for each metric; per-output values under `per_output`. When no
    output has a class axis, `top1_agreement_unavailable` says why. With `retrieval_k`, each
    output's rows over every batch are one retrieval pool (`retrieval_agreement`, over the
    `retrieval_items` that FP32 separates by `retrieval_margin`)."""
    import numpy as np

    per_output: dict[str, dict[str, float]] = {}
    no_class_axis: list[str] = []
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
        axis, why = class_axis_of(ref.shape, class_axis)
        if axis is not None:
            m["top1_agreement"] = float((ref.argmax(axis=axis) == act.argmax(axis=axis)).mean())
        else:
            no_class_axis.append(f"output '{name}': {why}")
        if retrieval_k is not None and len(ref) > retrieval_k:
            m["retrieval_items"] = retrieval_items(flat_r, retrieval_k, retrieval_margin)
            if m["retrieval_items"]:
                m["retrieval_agreement"] = retrieval_agreement(flat_r, flat_a, retrieval_k, retrieval_margin)
        if not np.isfinite(act).all():
            m["non_finite"] = float((~np.isfinite(act)).sum())
        per_output[name] = m
    merged: dict[str, float | dict] = {}
    for metric, worst in (("max_abs_error", max), ("mean_abs_error", max), ("cosine_similarity", min),
                          ("cosine_similarity_min", min), ("top1_agreement", min), ("retrieval_agreement", min),
                          ("retrieval_items", min)):
        values = [m[metric] for m in per_output.values() if metric in m]
        if values:
            merged[metric] = worst(values)
    if "retrieval_items" in merged and "retrieval_agreement" not in merged:
        merged["retrieval_agreement_unavailable"] = (
            f"FP32 separates no item's neighbours by validation.retrieval_margin={retrieval_margin}; "
            "lower it or validate more samples")
    if "top1_agreement" not in merged and no_class_axis:
        more = f" (and {len(no_class_axis) - 1} more outputs)" if len(no_class_axis) > 1 else ""
        merged["top1_agreement_unavailable"] = no_class_axis[0] + more
    if any("shape_mismatch" in m for m in per_output.values()):
        merged["shape_mismatch"] = 1.0
    merged["per_output"] = per_output
    return merged


def nearest_neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """[N, k]: for each row, the indices of its k most cosine-similar other rows, most similar
    first; ties go to the lower index (a stable sort), so equal inputs give equal answers."""
    import numpy as np

    return np.argsort(-_similarities(embeddings), axis=1, kind="stable")[:, :k]


def retrieval_agreement(reference: np.ndarray, actual: np.ndarray, k: int = 1, margin: float = 0.0) -> float:
    """The fraction of the N items whose k nearest neighbours by cosine (among the other N-1)
    under `actual` are the same set as under `reference`: does a search over the engine's
    embeddings return what it returns over FP32's? Rows are items; other axes are flattened.

    `margin` > 0 leaves out the items whose answer FP32 itself barely decides: those whose k-th
    and (k+1)-th neighbours' similarities under `reference` differ by less than `margin` (a near
    tie flips under any change of arithmetic, FP32's own included). The rule reads only the
    reference; NaN when it leaves no item (retrieval_items says how many counted)."""
    same, counted = _retrieval_hits(reference, actual, k, margin)
    return float(same[counted].mean()) if counted.any() else float("nan")


def retrieval_items(reference: np.ndarray, k: int = 1, margin: float = 0.0) -> int:
    """How many items retrieval_agreement counts at this margin."""
    return int(_retrieval_hits(reference, reference, k, margin)[1].sum())


def _retrieval_hits(reference: np.ndarray, actual: np.ndarray, k: int, margin: float):
    import numpy as np

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if len(reference) != len(actual):
        raise ValueError(f"reference has {len(reference)} items, actual {len(actual)}")
    if len(reference) <= k:
        raise ValueError(f"{len(reference)} items cannot have {k} neighbours each; need more than k items")
    want, got = nearest_neighbours(reference, k), nearest_neighbours(actual, k)
    same = (np.sort(want, axis=1) == np.sort(got, axis=1)).all(axis=1)
    counted = np.ones(len(reference), dtype=bool)
    if margin > 0 and len(reference) > k + 1:
        sim = np.sort(_similarities(reference), axis=1)[:, ::-1]  # most similar first
        counted = sim[:, k - 1] - sim[:, k] >= margin
    return same, counted


def _similarities(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row with every other; -inf on the diagonal."""
    import numpy as np

    rows = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit = rows / np.where(norms == 0, 1.0, norms)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)  # an item is not its own neighbour
    return sim


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
