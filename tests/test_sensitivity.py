"""auto_exclude on synthetic metrics whose answer is known."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from trtmake.errors import UserError
from trtmake.precision.sensitivity import auto_exclude, evaluation_bound

LAYERS = ["conv1", "dw2", "conv3", "dw4", "conv5", "fc"]
PENALTY = {"conv1": 0.004, "dw2": 0.06, "conv3": 0.002, "dw4": 0.03, "conv5": 0.001, "fc": 0.01}


class Metric:
    """Accuracy = 1 - the penalties of the quantized layers; counts every call."""

    def __init__(self, penalty=PENALTY):
        self.penalty = penalty
        self.calls: Counter = Counter()

    def __call__(self, excluded: tuple[str, ...]) -> float:
        self.calls[frozenset(excluded)] += 1
        return 1.0 - sum(p for layer, p in self.penalty.items() if layer not in excluded)


@pytest.mark.parametrize("strategy", ["leave_one_out", "one_at_a_time"])
def test_leaves_the_fewest_most_sensitive_layers_in_float(strategy):
    metric = Metric()
    result = auto_exclude(LAYERS, metric, target=0.99, max_excluded=4, strategy=strategy)
    assert result.excluded == ("dw2", "dw4", "fc")  # 1 - 0.007 >= 0.99; two layers are not enough
    assert result.reached and result.score == pytest.approx(0.993)
    assert result.baseline == pytest.approx(1 - sum(PENALTY.values()))
    assert max(result.sensitivity, key=result.sensitivity.get) == "dw2"
    assert [s.excluded for s in result.steps if s.phase == "greedy"] == [("dw2",), ("dw2", "dw4"), ("dw2", "dw4", "fc")]
    assert result.steps[0].phase == "baseline" and result.steps[0].excluded == ()
    assert max(metric.calls.values()) == 1  # no configuration is evaluated twice
    assert result.evaluations == len(metric.calls) <= evaluation_bound(len(LAYERS), 4, strategy)


def test_no_work_when_the_quantized_model_already_meets_the_target():
    metric = Metric()
    result = auto_exclude(LAYERS, metric, target=0.8, max_excluded=4)
    assert result.excluded == () and result.reached and result.evaluations == 1
    assert result.sensitivity == {}


def test_stops_at_the_limit_and_says_the_target_was_missed():
    result = auto_exclude(LAYERS, Metric(), target=0.999, max_excluded=2)
    assert result.excluded == ("dw2", "dw4") and not result.reached
    assert result.score == pytest.approx(1 - 0.017)


def test_pruning_quantizes_again_what_the_target_does_not_need():
    """dw2 and dw4 hurt only together (either one in float fixes it), conv5 hurts alone: the
    greedy pass keeps dw2, dw4 and conv5 in float, pruning gives dw4 back."""

    def metric(excluded):
        both = "dw2" not in excluded and "dw4" not in excluded
        return 1.0 - (0.1 if both else 0.0) - (0.05 if "conv5" not in excluded else 0.0)

    result = auto_exclude(["dw2", "dw4", "conv5"], metric, target=0.99, max_excluded=3)
    assert set(result.excluded) == {"dw2", "conv5"} and result.score == 1.0
    assert [s.phase for s in result.steps].count("prune") >= 1
    unpruned = auto_exclude(["dw2", "dw4", "conv5"], metric, target=0.99, max_excluded=3, prune=False)
    assert unpruned.excluded == ("dw2", "dw4", "conv5")


def test_one_at_a_time_sees_layers_that_only_hurt_alone():
    """Quantizing `a` alone costs 0.05; with everything quantized its error is masked by `b`."""

    def metric(excluded):
        quantized = {"a", "b", "c"} - set(excluded)
        if "b" in quantized:
            return 0.5
        return 1.0 - (0.05 if "a" in quantized else 0.0)

    result = auto_exclude(["a", "b", "c"], metric, target=0.99, max_excluded=3, strategy="one_at_a_time")
    assert result.excluded[0] == "b" and "a" in result.excluded and "c" not in result.excluded


def test_a_continuous_signal_ranks_layers_the_discrete_score_cannot():
    """Top-1 on few samples moves in coarse steps; the (score, signal) form ranks by the signal."""
    metric = Metric()

    def evaluate(excluded):
        exact = metric(excluded)
        return float(np.floor(exact * 20) / 20), exact  # score in steps of 0.05

    result = auto_exclude(LAYERS, evaluate, target=0.95, max_excluded=3)
    assert result.excluded == ("dw2",)  # 0.957 -> score 0.95; dw2 has the largest signal gain
    assert result.sensitivity["dw2"] == pytest.approx(0.06) and result.sensitivity["fc"] == pytest.approx(0.01)
    assert result.steps[-1].signal == pytest.approx(1 - 0.047) and result.steps[-1].score == 0.95


def test_ties_keep_the_candidates_order():
    flat = {layer: 0.01 for layer in LAYERS}
    result = auto_exclude(LAYERS, Metric(flat), target=0.98, max_excluded=6)
    assert result.excluded == ("conv1", "dw2", "conv3", "dw4")


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="strategy: unknown 'random'"):
        auto_exclude(LAYERS, Metric(), 0.99, 3, strategy="random")
    with pytest.raises(UserError, match="max_layers must be >= 0"):
        auto_exclude(LAYERS, Metric(), 0.99, -1)


def test_the_result_serializes_for_the_report():
    import json

    result = auto_exclude(LAYERS, Metric(), target=0.99, max_excluded=4)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["excluded"] == ["dw2", "dw4", "fc"] and len(data["steps"]) == len(result.steps)


def test_the_most_sensitive_layer_is_found_wherever_it_is_in_graph_order():
    """EfficientNet's sensitive layers sit late in the graph: no candidate is dropped for its position."""
    layers = [f"conv{i}" for i in range(60)]
    penalty = {name: 0.0005 for name in layers} | {"conv57": 0.05}
    metric = Metric(penalty)
    result = auto_exclude(layers, metric, target=0.95, max_excluded=3)
    assert result.excluded == ("conv57",) and result.reached
    assert set(result.sensitivity) == set(layers)
    assert result.evaluations <= evaluation_bound(len(layers), 3)
