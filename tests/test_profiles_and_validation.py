"""Profiles are checked against the model before any build; validation runs at
the declared shape points; metrics and assertions are real numbers from real runs."""

import numpy as np
import pytest

from trtmake import metrics
from trtmake.assertions import evaluate
from trtmake.errors import UserError
from trtmake.profiles import InputSpec, Profile, ShapeRange, check_profile

MODEL = [InputSpec("input", "float32", ("batch", 3, 32, 32))]


def _profile(mn, opt, mx, name="input"):
    return Profile("p", {name: ShapeRange(tuple(mn), tuple(opt), tuple(mx))})


@pytest.mark.parametrize("profile, words", [
    (_profile([1, 3, 32, 32], [1, 3, 32, 32], [2, 3, 32, 32], name="image"), ["'image'", "input"]),
    (_profile([1, 3, 32], [1, 3, 32], [1, 3, 32]), ["rank 3", "rank 4"]),
    (_profile([1, 3, 32, 32], [1, 3, 64, 64], [1, 3, 64, 64]), ["opt[2] = 64", "fixes that dim to 32"]),
    (_profile([4, 3, 32, 32], [2, 3, 32, 32], [8, 3, 32, 32]), ["min <= opt <= max", "axis 0"]),
])
def test_profile_that_does_not_fit_the_model_is_a_clear_error(profile, words):
    with pytest.raises(UserError) as err:
        check_profile(profile, MODEL, "tiny")
    for w in words:
        assert w in str(err.value)


def test_profile_mismatch_fails_before_any_build(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "profile.shapes.input.opt=[1,3,64,64]",
                   "profile.shapes.input.max=[4,3,64,64]") == 2
    assert "fixes that dim to 32" in trtmake.last_err
    st = trtmake.statuses()  # checked inside the source stage, before it publishes anything
    assert st["source"] == "failed" and st["build"] == "skipped" and st["precision"] == "skipped"
    assert not (trtmake.cache / "objects").exists() or not any(p.is_file() for p in (trtmake.cache / "objects").rglob("*"))


def test_profile_errors_name_the_recipe_and_say_the_fix(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "profile.shapes.input.opt=[1,3,64,64]",
                   "profile.shapes.input.max=[4,3,64,64]") == 2
    assert "profile=tiny_b1:" in trtmake.last_err and "use 32 there" in trtmake.last_err


def test_profile_out_of_order_fails_at_planning_before_any_stage(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "profile.shapes.input.min=[8,3,32,32]") == 2
    err = trtmake.last_err
    assert "profile=tiny_b1: profile.shapes.input needs min <= opt <= max on axis 0, got 8, 1, 4" in err
    assert "so that they are in order" in err
    assert not trtmake.report_path.exists() and not (trtmake.cache / "objects").exists()


def test_validation_at_min_opt_and_max_shapes(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "validation.shapes=[min,opt,max]",
                   "validation.assertions=[{metric: cosine_similarity, op: '>=', value: 0.999, shape: max}]") == 0
    t = trtmake.report["targets"][0]
    assert t["metrics"]["batch_size"] == 1
    assert t["metrics"]["at"]["max"]["batch_size"] == 4
    assert t["metrics"]["at"]["min"]["batch_size"] == 1
    assert t["assertions"][0]["shape"] == "max" and t["assertions"][0]["passed"]


def test_reference_and_validate_share_one_set_of_inputs_that_dies_with_the_run(trtmake, monkeypatch):
    from trtmake import app
    from trtmake.stages import validate

    made, results, execute = [], [], app.execute
    monkeypatch.setattr(app, "execute", lambda *a: results.append(execute(*a)) or results[-1])
    real = validate.load_samples
    monkeypatch.setattr(validate, "load_samples", lambda *a, **k: made.append(a[4]) or real(*a, **k))
    assert trtmake("target=tiny_cnn_fp32", "validation.shapes=[min,opt,max]") == 0, trtmake.last_err
    assert trtmake.statuses()["reference"] == trtmake.statuses()["validate"] == "built"
    assert len(made) == 3  # one per shape point, not one per point and stage
    assert not [k for k in results[-1].context.data if k.startswith("__")]


def test_failed_assertion_exits_1_and_is_reported(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "validation.min_throughput=1e12") == 1
    t = trtmake.report["targets"][0]
    failed = [a for a in t["assertions"] if not a["passed"]]
    assert failed and failed[0]["metric"] == "throughput" and failed[0]["actual"] < 1e12
    assert trtmake.report["ok"] is False
    assert "FAILED" in trtmake.last_out


def test_accuracy_metrics_on_known_arrays():
    ref = [{"y": np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])}]
    act = [{"y": np.array([[1.0, 0.1, 0.0], [0.0, 0.0, 3.0]])}]
    m = metrics.accuracy(ref, act)
    assert m["max_abs_error"] == pytest.approx(3.0)
    assert m["top1_agreement"] == pytest.approx(0.5)
    assert m["cosine_similarity_min"] == pytest.approx(0.0, abs=1e-12)
    assert m["cosine_similarity"] == pytest.approx((1 / np.sqrt(1.01)) / 2)


def test_speed_metrics_percentiles_and_throughput():
    s = metrics.speed([1.0] * 98 + [10.0, 20.0], batch_size=4)
    assert s["latency_p50_ms"] == 1.0 and s["latency_p99_ms"] > 9.0
    assert s["throughput"] == pytest.approx(4 * 1000 / np.mean([1.0] * 98 + [10.0, 20.0]))


def test_missing_metric_fails_its_assertion():
    v = evaluate([{"metric": "top1_agreement", "op": ">=", "value": 0.9, "shape": "opt"}], {"opt": {}})
    assert v[0]["passed"] is False and v[0]["actual"] is None
