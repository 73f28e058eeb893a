"""What a user's model needs from the data, the metrics and the profile: integer inputs in range
and never constant, a class axis found after squeezing 1-dims (or why not), and a profile
error that prints an override that works for any input name."""

from __future__ import annotations

import numpy as np
import pytest

from trtmake import metrics
from trtmake.datasets import constant_inputs, load_samples
from trtmake.errors import UserError
from trtmake.profiles import (InputSpec, ShapeRange, check_profile, declare_hint, fill_static_inputs,
                              profile_from_config, resolved_shapes)

SYNTH = {"kind": "synthetic", "seed": 3, "distribution": "normal", "low": 0.0, "high": 1.0, "int_range": None}


def _ids(spec: InputSpec, src=SYNTH, count=8):
    return np.stack([s[spec.name] for s in load_samples(src, "dataset.validation", None, [spec],
                                                        {spec.name: (1, 16)}, count)])


def test_token_ids_stay_below_the_vocabulary_and_vary():
    ids = _ids(InputSpec("input_ids", "int64", ("batch", 16), vocab=50))
    assert ids.min() >= 0 and ids.max() < 50 and len(np.unique(ids)) > 10


def test_integer_inputs_without_a_vocabulary_are_not_constant():
    mask = _ids(InputSpec("attention_mask", "int64", ("batch", 16)))
    assert len(np.unique(mask)) > 1 and constant_inputs([{"m": mask}]) == []


def test_declared_int_range_wins_and_a_one_value_range_is_refused():
    spec = InputSpec("ids", "int32", (1, 16), vocab=50)
    ids = _ids(spec, {**SYNTH, "int_range": [100, 103]})
    assert set(np.unique(ids)) == {100, 101, 102} and ids.dtype == np.int32
    with pytest.raises(UserError, match=r"dataset.validation.int_range: \[0, 1\] must be \[low, high\)"):
        _ids(spec, {**SYNTH, "int_range": [0, 1]})


def test_constant_inputs_are_named():
    samples = [{"a": np.zeros(3), "b": np.arange(3)}, {"a": np.zeros(3), "b": np.arange(3) + 1}]
    assert constant_inputs(samples) == ["a"]


@pytest.mark.parametrize("shape, axis", [((4, 10), 1), ((4, 10, 1, 1), 1), ((4, 1, 10), 2), ((1, 10), 1)])
def test_class_axis_found_after_squeezing_ones(shape, axis):
    assert metrics.class_axis_of(shape, None) == (axis, "")


def test_top1_without_a_class_axis_says_why_and_what_to_set():
    ref = [{"boxes": np.random.default_rng(0).standard_normal((2, 5, 4))}]
    m = metrics.accuracy(ref, ref)
    assert "top1_agreement" not in m
    assert "several axes longer than 1" in m["top1_agreement_unavailable"]
    assert "validation.class_axis" in m["top1_agreement_unavailable"]
    m = metrics.accuracy(ref, ref, class_axis=1)
    assert m["top1_agreement"] == 1.0


def test_failed_top1_assertion_carries_the_reason():
    from trtmake.assertions import evaluate

    verdicts = evaluate([{"metric": "top1_agreement", "op": ">=", "value": 0.9, "shape": "opt"}],
                        {"opt": {"top1_agreement_unavailable": "output 'y': shape [1, 1] has no axis longer than 1"}})
    assert not verdicts[0]["passed"] and "no axis longer than 1" in verdicts[0]["reason"]


def test_profile_inputs_list_and_batch_default_fill_the_model_inputs():
    shapes = resolved_shapes({"shapes": {}, "inputs": [{"name": "a/b:0", "min": [1, 4], "opt": [2, 8], "max": [4, 8]}],
                              "batch": {"min": 1, "opt": 3, "max": 6}})
    profile = profile_from_config("model", shapes)
    specs = [InputSpec("a/b:0", "float32", ("n", "seq")), InputSpec("x.1", "float32", ("n", 3, 8, 8)),
             InputSpec("fixed", "int64", (1, 5))]
    filled = fill_static_inputs(profile, specs)
    assert filled.shapes["a/b:0"] == ShapeRange((1, 4), (2, 8), (4, 8))
    assert filled.shapes["x.1"] == ShapeRange((1, 3, 8, 8), (3, 3, 8, 8), (6, 3, 8, 8))
    assert filled.shapes["fixed"] == ShapeRange((1, 5), (1, 5), (1, 5))
    check_profile(filled, specs, "m.onnx")


def test_repeated_profile_input_is_a_user_error():
    with pytest.raises(UserError, match=r"profile.inputs\[1\]: repeats input 'x'"):
        resolved_shapes({"inputs": [{"name": "x", "min": [1], "opt": [1], "max": [1]}] * 2})


def test_undeclared_dynamic_dim_prints_an_override_hydra_parses():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    spec = InputSpec("encoder/input.ids:0", "int64", ("batch", "seq"))
    profile = profile_from_config("model", resolved_shapes({"batch": {"min": 1, "opt": 1, "max": 8}}))
    with pytest.raises(UserError) as exc:
        check_profile(fill_static_inputs(profile, [spec]), [spec], "enc.onnx")
    line = str(exc.value)
    assert "enc.onnx input 'encoder/input.ids:0'" in line and "dynamic dim(s) [0, 1]" in line and len(line) < 300
    override = line.split("declare them: ")[1].strip("'")
    assert override == declare_hint([spec], profile.batch).strip("'")
    parsed = OverridesParser.create().parse_overrides([override])[0]
    assert parsed.value()[0] == {"name": "encoder/input.ids:0", "min": [1, 1], "opt": [1, 32], "max": [8, 64]}
