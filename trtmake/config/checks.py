"""Value checks of a composed target, made when it is planned, before any stage runs.

The schema types every key; these rules say which values of a well-typed key make sense
(counts, signs, ranges). Each rule names its key, so a bad value is one line naming the key and
what it accepts, exit 2, and nothing runs or is cached. All range rules live here.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from trtmake.errors import UserError
from trtmake.remote_url import MODES as REMOTE_MODES

Rule = tuple[str, Callable[[float], bool], str]


def _at_least(low: float) -> Callable[[float], bool]:
    return lambda v: v >= low


def _positive(v: float) -> bool:
    return v > 0


def _between(low: float, high: float) -> Callable[[float], bool]:
    return lambda v: low <= v <= high


# key, test, what the key accepts (said in the message). A None value is "unset" and skipped.
RULES: tuple[Rule, ...] = (
    ("validation.warmup", _at_least(0), "an integer >= 0 (untimed runs before timing)"),
    ("validation.iters", _at_least(1), "an integer >= 1 (timed runs)"),
    ("validation.num_samples", _at_least(1), "an integer >= 1"),
    ("validation.retrieval_k", _at_least(1), "an integer >= 1 (nearest neighbours compared)"),
    ("validation.retrieval_margin", _between(0, 2), "a cosine gap in [0, 2] (0: every item counts)"),
    ("validation.max_latency_p50_ms", _positive, "a latency in ms > 0, or null to drop it"),
    ("validation.max_latency_p99_ms", _positive, "a latency in ms > 0, or null to drop it"),
    ("validation.min_throughput", _positive, "samples/s > 0, or null to drop it"),
    ("validation.min_top1_agreement", _between(0, 1), "a fraction in [0, 1], or null to drop it"),
    ("validation.min_cosine_similarity", _between(-1, 1), "a value in [-1, 1], or null to drop it"),
    ("validation.max_abs_error", _at_least(0), "a value >= 0, or null to drop it"),
    ("validation.max_memory_mb", _positive, "megabytes > 0, or null to drop it"),
    ("calibrator.num_samples", _at_least(1), "an integer >= 1"),
    ("calibrator.batch_size", _at_least(1), "an integer >= 1"),
    ("calibrator.num_bins", _at_least(2), "an integer >= 2"),
    ("calibrator.num_quantized_bins", _at_least(1), "an integer >= 1"),
    ("calibrator.percentile", lambda v: 0 < v <= 100, "a percentile in (0, 100]"),
    ("precision.auto_exclude.max_layers", _at_least(0), "an integer >= 0"),
    ("precision.auto_exclude.max_candidates", _at_least(0), "an integer >= 0 (0: every layer)"),
    ("backend.onnxruntime.intra_op_num_threads", _at_least(0), "an integer >= 0 (0: onnxruntime decides)"),
    ("backend.tensorrt.workspace_mb", _positive, "megabytes > 0, or null for TensorRT's default"),
    ("backend.tensorrt.builder_optimization_level", _between(0, 5), "an integer in [0, 5]"),
    ("backend.tensorrt.max_aux_streams", _at_least(0), "an integer >= 0, or null for TensorRT's default"),
    ("backend.tensorrt.device", _at_least(0), "a GPU index >= 0"),
    ("backend.tensorrt.max_builds_per_gpu", _at_least(1), "an integer >= 1"),
    ("cache.lock_timeout_s", _at_least(0), "seconds >= 0"),
)

# The range of each metric's value, for the assertions list (a latency budget of -5 ms can never
# hold: better said now than after a full build).
METRIC_RANGE: dict[str, tuple[Callable[[float], bool], str]] = {
    "top1_agreement": (_between(0, 1), "a fraction in [0, 1]"),
    "retrieval_agreement": (_between(0, 1), "a fraction in [0, 1]"),
    "cosine_similarity": (_between(-1, 1), "a value in [-1, 1]"),
    "cosine_similarity_min": (_between(-1, 1), "a value in [-1, 1]"),
    "max_abs_error": (_at_least(0), "a value >= 0"),
    "mean_abs_error": (_at_least(0), "a value >= 0"),
    **{m: (_positive, "a latency in ms > 0") for m in
       ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms")},
    "throughput": (_positive, "samples/s > 0"),
    "memory_mb": (_positive, "megabytes > 0"),
}

# Lists of positive integers: key, what an entry is (said in the message).
COUNT_LISTS = (
    ("validation.streams", "a count of concurrent executions"),
    ("validation.sweep.batch", "a batch size"),
    ("validation.sweep.seq", "a sequence length"),
)


def check_values(cfg: dict[str, Any]) -> None:
    """Raise a UserError naming the first key whose value is out of its range."""
    for key, ok, accepts in RULES:
        value = _lookup(cfg, key)
        if value is not None:
            _check(key, value, ok, accepts)
    validation = cfg.get("validation") or {}
    for i, a in enumerate(validation.get("assertions") or []):
        rule = METRIC_RANGE.get(a.get("metric"))
        if rule is not None and a.get("value") is not None:
            _check(f"validation.assertions[{i}].value", a["value"], *rule, what=f" for {a['metric']}")
    for key, what in COUNT_LISTS:
        values = _lookup(cfg, key) or []
        for i, v in enumerate(values):
            _check(f"{key}[{i}]", v, _at_least(1), f"{what}, an integer >= 1")
            if isinstance(v, float):
                raise UserError(f"{key}[{i}]: {v!r} is not an integer; give {what}, an integer >= 1")
        if len(set(values)) != len(values):
            raise UserError(f"{key}: {list(values)} repeats a value; give each once")
    if not validation.get("shapes", ["opt"]):
        raise UserError("validation.shapes: empty; list at least one profile point, e.g. [opt]")
    mode = _lookup(cfg, "cache.remote.mode")
    if mode is not None and mode not in REMOTE_MODES:
        raise UserError(f"cache.remote.mode: '{mode}' is not one of {', '.join(REMOTE_MODES)}; "
                        "set cache.remote.mode=read-write, read-only or off")
    cal = cfg.get("calibrator") or {}
    if cal.get("num_quantized_bins") and cal.get("num_bins") and cal["num_quantized_bins"] > cal["num_bins"]:
        raise UserError(f"calibrator.num_quantized_bins: {cal['num_quantized_bins']} is more than "
                        f"calibrator.num_bins ({cal['num_bins']}); lower it or raise num_bins")


def _check(key: str, value: Any, ok: Callable[[float], bool], accepts: str, what: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not ok(value):
        raise UserError(f"{key}: {value!r} is out of range{what}; give {accepts}")


def _lookup(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
