"""Validation assertions are data, `{metric, op, value, shape}`, never code: no eval.

`shape` is a validation point: `opt` (one of validation.shapes), or with several profiles
`short/opt`; a bare point then holds at that point of every profile (one verdict each). A metric
of the whole engine (ENGINE: memory) is measured once and has shape `engine`.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from trtmake.errors import UserError
from trtmake.metrics import ACCURACY, ENGINE, SPEED
from trtmake.profiles import POINTS

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
METRICS = ACCURACY + SPEED + ENGINE

# validation.<shorthand> -> (metric, op)
SHORTHANDS = {
    "max_latency_p50_ms": ("latency_p50_ms", "<="),
    "max_latency_p99_ms": ("latency_p99_ms", "<="),
    "min_throughput": ("throughput", ">="),
    "min_top1_agreement": ("top1_agreement", ">="),
    "min_cosine_similarity": ("cosine_similarity", ">="),
    "max_abs_error": ("max_abs_error", "<="),
    "max_memory_mb": ("memory_mb", "<="),
}


def declared(validation: dict[str, Any], profiles: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The assertions of a validation config (list + shorthands), checked, in a fixed order.
    `profiles`: the target's profile names when it has several (a shape may name one)."""
    out = []
    points = validation.get("shapes", ["opt"])
    for i, a in enumerate(validation.get("assertions") or []):
        where = f"validation.assertions[{i}]"
        if a["op"] not in OPS:
            raise UserError(f"{where}.op: '{a['op']}' is not one of {list(OPS)}")
        if a["metric"] not in METRICS:
            raise UserError(f"{where}.metric: unknown metric '{a['metric']}'; choose one of {list(METRICS)}")
        shape = "engine" if a["metric"] in ENGINE else a.get("shape", "opt")
        profile, _, point = shape.rpartition("/")
        if shape != "engine" and (point not in points or (profile and profile not in profiles)):
            known = f" or <profile>/<point> with a profile of {list(profiles)}" if len(profiles) > 1 else ""
            raise UserError(f"{where}.shape: '{shape}' is not validated; give a point of validation.shapes "
                            f"{points}{known}")
        if a["metric"] == "retrieval_agreement" and validation.get("retrieval_k") is None:
            raise UserError(f"{where}: retrieval_agreement needs validation.retrieval_k (how many neighbours, e.g. 1)")
        out.append({"metric": a["metric"], "op": a["op"], "value": float(a["value"]), "shape": shape})
    for field, (metric, op) in SHORTHANDS.items():
        if validation.get(field) is not None:
            shape = "engine" if metric in ENGINE else "opt"
            out.append({"metric": metric, "op": op, "value": float(validation[field]), "shape": shape})
    for point in validation.get("shapes", ["opt"]):
        if point not in POINTS:
            raise UserError(f"validation.shapes: '{point}' is not one of {list(POINTS)}")
    return out


def evaluate(assertions: list[dict[str, Any]], metrics_at: dict[str, dict[str, Any]],
             engine: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each assertion with `actual` and `passed`; a metric the run did not produce fails. A bare
    point (`opt`) of a target with several profiles gives a verdict per profile (`short/opt`, ...);
    `engine`: the metrics of the whole engine (shape `engine`)."""
    verdicts = []
    for a in assertions:
        if a["shape"] == "engine":
            verdicts.append(_verdict(a, engine or {}))
            continue
        named = [p for p in metrics_at if "/" in p and p.rpartition("/")[2] == a["shape"]]
        for point in [a["shape"]] if a["shape"] in metrics_at or not named else named:
            verdicts.append(_verdict({**a, "shape": point}, metrics_at.get(point, {})))
    return verdicts


def _verdict(a: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    actual = measured.get(a["metric"])
    passed = actual is not None and not (isinstance(actual, float) and math.isnan(actual)) \
        and OPS[a["op"]](actual, a["value"])
    verdict = {**a, "actual": actual, "passed": bool(passed)}
    why = measured.get(f"{a['metric']}_unavailable")
    if actual is None and why:
        verdict["reason"] = f"{a['metric']} unavailable: {why}"
    return verdict
