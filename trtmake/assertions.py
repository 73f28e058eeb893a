"""Validation assertions are data, `{metric, op, value, shape}`, never code: no eval."""

from __future__ import annotations

import math
import operator
from typing import Any

from trtmake.errors import UserError
from trtmake.metrics import ACCURACY, SPEED

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
METRICS = ACCURACY + SPEED
POINTS = ("min", "opt", "max")

# validation.<shorthand> -> (metric, op)
SHORTHANDS = {
    "max_latency_p50_ms": ("latency_p50_ms", "<="),
    "max_latency_p99_ms": ("latency_p99_ms", "<="),
    "min_throughput": ("throughput", ">="),
    "min_top1_agreement": ("top1_agreement", ">="),
    "min_cosine_similarity": ("cosine_similarity", ">="),
    "max_abs_error": ("max_abs_error", "<="),
}


def declared(validation: dict[str, Any]) -> list[dict[str, Any]]:
    """The assertions of a validation config (list + shorthands), checked, in a fixed order."""
    out = []
    for i, a in enumerate(validation.get("assertions") or []):
        where = f"validation.assertions[{i}]"
        if a["op"] not in OPS:
            raise UserError(f"{where}.op: '{a['op']}' is not one of {list(OPS)}")
        if a["metric"] not in METRICS:
            raise UserError(f"{where}.metric: unknown metric '{a['metric']}'; choose one of {list(METRICS)}")
        if a.get("shape", "opt") not in validation.get("shapes", ["opt"]):
            raise UserError(f"{where}.shape: '{a.get('shape')}' is not validated; add it to validation.shapes "
                            f"{validation.get('shapes')}")
        out.append({"metric": a["metric"], "op": a["op"], "value": float(a["value"]), "shape": a.get("shape", "opt")})
    for field, (metric, op) in SHORTHANDS.items():
        if validation.get(field) is not None:
            out.append({"metric": metric, "op": op, "value": float(validation[field]), "shape": "opt"})
    for point in validation.get("shapes", ["opt"]):
        if point not in POINTS:
            raise UserError(f"validation.shapes: '{point}' is not one of {list(POINTS)}")
    return out


def evaluate(assertions: list[dict[str, Any]], metrics_at: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each assertion with `actual` and `passed`; a metric the run did not produce fails."""
    verdicts = []
    for a in assertions:
        actual = metrics_at.get(a["shape"], {}).get(a["metric"])
        passed = actual is not None and not (isinstance(actual, float) and math.isnan(actual)) \
            and OPS[a["op"]](actual, a["value"])
        verdict = {**a, "actual": actual, "passed": bool(passed)}
        why = metrics_at.get(a["shape"], {}).get(f"{a['metric']}_unavailable")
        if actual is None and why:
            verdict["reason"] = f"{a['metric']} unavailable: {why}"
        verdicts.append(verdict)
    return verdicts
