"""Each stage declares the config keys it reads; its key and run see only that slice."""

from __future__ import annotations

from trtmake.hashing import digest_json
from trtmake.keys import config_slice
from trtmake.stages import STAGES, pipeline


def test_config_slice_copies_declared_keys_and_groups_only():
    cfg = {"precision": {"mode": "int8", "per_channel": True}, "validation": {"iters": 7, "warmup": 1},
           "dataset": {"selection": None}, "model": {"path": "m.onnx"}}
    got = config_slice(cfg, ("precision.mode", "validation", "dataset.selection", "calibrator.num_bins"))
    assert got == {"precision": {"mode": "int8"}, "validation": {"iters": 7, "warmup": 1},
                   "dataset": {"selection": None}, "calibrator": {"num_bins": None}}


def test_the_pipeline_follows_each_stages_own_rule():
    names = lambda mode: [s.name for s in pipeline({"precision": {"mode": mode}})]  # noqa: E731
    assert names("fp16") == ["source", "precision", "build", "reference", "validate"]
    assert names("int8") == ["source", "calibrate", "precision", "build", "reference", "validate"]
    assert all(s.params or s.name == "build" for s in STAGES)  # build reads the parsed options


def test_stage_results_carry_the_components_their_key_digests(trtmake, monkeypatch):
    from trtmake import app

    results, execute = [], app.execute
    monkeypatch.setattr(app, "execute", lambda *a: results.append(execute(*a)) or results[-1])
    assert trtmake("target=tiny_cnn_fp32") == 0
    stages = results[-1].stages
    assert [s.status for s in stages] == ["built"] * 5
    for s in stages:
        assert s.components["stage"] == s.name and digest_json(s.components) == s.key
    assert results[-1].context.profile.shapes_at("opt")  # the profile, once per target

