"""Mixed precision by measurement: leave the fewest most-sensitive layers in float.

`auto_exclude` is pure: the caller's `evaluate(excluded)` quantizes the model with `excluded`
left in float, runs it on the validation set and returns the metric (higher is better, e.g.
top-1 agreement with FP32). Every call is recorded, and no set is evaluated twice.

A discrete metric ranks layers badly: on 100 samples one layer moves top-1 agreement by 0 or
0.01, mostly noise. `evaluate` may therefore return (score, signal): `score` is compared with
the target, `signal` is a continuous measure of the same quality (e.g. mean cosine similarity
of the outputs with FP32) and ranks the layers' sensitivity.

Cost, in calls to `evaluate` (see `evaluation_bound`), for N candidates and k = max_excluded:
  1 (everything quantized)
  + N sensitivity probes (+1 for "one_at_a_time": all candidates in float)
  + at most k greedy steps
  + at most k - 1 pruning probes (when `prune`).
Each call is one quantization and one validation run; cap N (e.g. weighted layers only) and k
to bound the time. Nothing is evaluated when everything-quantized already meets the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from trtmake.errors import UserError

STRATEGIES = ("leave_one_out", "one_at_a_time")
Evaluate = Callable[[tuple[str, ...]], "float | tuple[float, float]"]


@dataclass(frozen=True)
class Step:
    """One evaluated configuration: the layers left in float and the metric it reached."""

    phase: str  # "baseline", "greedy" or "prune"
    excluded: tuple[str, ...]
    score: float
    signal: float  # the ranking signal (= score when evaluate returns a plain float)


@dataclass(frozen=True)
class AutoExcludeResult:
    excluded: tuple[str, ...]  # the layers to leave in float, most sensitive first
    score: float  # the metric with exactly those layers in float
    reached: bool  # score >= target
    target: float
    baseline: float  # the metric with every candidate quantized
    strategy: str
    sensitivity: dict[str, float]  # signal gained by keeping that layer in float (probe-based)
    steps: tuple[Step, ...]
    evaluations: int

    def to_dict(self) -> dict:
        return asdict(self)


def evaluation_bound(num_candidates: int, max_excluded: int, strategy: str = "leave_one_out",
                     prune: bool = True) -> int:
    """The most calls to `evaluate` that `auto_exclude` can make with these settings."""
    k = min(max_excluded, num_candidates)
    extra = 1 if strategy == "one_at_a_time" else 0
    return 1 + num_candidates + extra + k + (max(k - 1, 0) if prune else 0)


def auto_exclude(
    candidates: Sequence[str],
    evaluate: Evaluate,
    target: float,
    max_excluded: int,
    strategy: str = "leave_one_out",
    *,
    prune: bool = True,
) -> AutoExcludeResult:
    """Leave the most sensitive candidates in float, one at a time, until `target` is met.

    strategy "leave_one_out": a layer's sensitivity is what the metric gains when only that
    layer is left in float (everything else quantized). "one_at_a_time": what the metric loses
    when only that layer is quantized (every other candidate in float). Layers are then kept
    in float in order of sensitivity until evaluate(excluded) >= target or `max_excluded` is
    reached; with `prune`, layers the target does not need are then quantized again, least
    sensitive first.
    """
    if strategy not in STRATEGIES:
        raise UserError(f"precision.auto_exclude.strategy: unknown '{strategy}'; choose one of {list(STRATEGIES)}")
    if max_excluded < 0:
        raise UserError(f"precision.auto_exclude.max_layers must be >= 0, got {max_excluded}")
    candidates = list(dict.fromkeys(candidates))
    order = {name: i for i, name in enumerate(candidates)}
    scores: dict[frozenset, tuple[float, float]] = {}
    steps: list[Step] = []

    def measure(excluded: Sequence[str]) -> tuple[float, float]:
        key = frozenset(excluded)
        if key not in scores:
            value = evaluate(tuple(sorted(key, key=order.__getitem__)))
            score, signal = (value, value) if isinstance(value, (int, float)) else value
            scores[key] = (float(score), float(signal))
        return scores[key]

    def run(excluded: Sequence[str], phase: str) -> float:
        score, signal = measure(excluded)
        steps.append(Step(phase, tuple(excluded), score, signal))
        return score

    baseline = run((), "baseline")
    sensitivity: dict[str, float] = {}
    excluded: list[str] = []
    score = baseline
    if baseline < target and max_excluded > 0 and candidates:
        if strategy == "leave_one_out":
            floor = measure(())[1]
            sensitivity = {c: measure((c,))[1] - floor for c in candidates}
        else:
            ceiling = measure(candidates)[1]
            sensitivity = {c: ceiling - measure([o for o in candidates if o != c])[1] for c in candidates}
        ranked = sorted(candidates, key=lambda c: (-sensitivity[c], order[c]))
        for name in ranked[:max_excluded]:
            excluded.append(name)
            score = run(excluded, "greedy")
            if score >= target:
                break
        if prune and score >= target:
            for name in reversed(excluded[:-1]):  # the last one added was needed to cross
                trial = [e for e in excluded if e != name]
                trial_score = run(trial, "prune")
                if trial_score >= target:
                    excluded, score = trial, trial_score
    return AutoExcludeResult(
        excluded=tuple(excluded), score=score, reached=score >= target, target=target, baseline=baseline,
        strategy=strategy, sensitivity=sensitivity, steps=tuple(steps), evaluations=len(scores),
    )
