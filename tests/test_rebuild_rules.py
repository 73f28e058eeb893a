"""What reruns after each kind of change, on real onnxruntime builds."""

from __future__ import annotations

import os

ALL_BUILT = {"source": "built", "precision": "built", "build": "built", "reference": "built", "validate": "built"}
ALL_CACHED = {k: "cached" for k in ALL_BUILT}


def test_second_run_rebuilds_nothing(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert trtmake.statuses() == ALL_BUILT
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert trtmake.statuses() == ALL_CACHED


def test_touch_with_same_bytes_rebuilds_nothing(trtmake, tiny_model):
    assert trtmake("target=tiny_cnn_fp32", f"model.path={tiny_model}", "model.generator=null") == 0
    os.utime(tiny_model)
    os.utime(tiny_model.parent / "tiny.weights")
    assert trtmake("target=tiny_cnn_fp32", f"model.path={tiny_model}", "model.generator=null") == 0
    assert trtmake.statuses() == ALL_CACHED


def test_changed_weight_byte_reruns_precision_build_validate(trtmake, tiny_model):
    args = ("target=tiny_cnn_fp16", f"model.path={tiny_model}", "model.generator=null")
    assert trtmake(*args) == 0
    weights = tiny_model.parent / "tiny.weights"
    data = bytearray(weights.read_bytes())
    data[103] ^= 0x01  # exponent byte of one float32 weight (survives fp16 rounding)
    weights.write_bytes(bytes(data))
    assert trtmake(*args) == 0
    st = trtmake.statuses()
    assert st["precision"] == st["build"] == st["validate"] == "built"
    assert st["source"] == "built" and st["reference"] == "built"


def test_changed_latency_budget_reruns_only_validation(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert trtmake("target=tiny_cnn_fp32", "validation.max_latency_p99_ms=10000") == 0
    assert trtmake.statuses() == {**ALL_CACHED, "validate": "built"}


def test_changed_backend_option_reruns_build_and_validation(trtmake):
    assert trtmake("target=tiny_cnn_fp16", "backend=onnxruntime") == 0
    assert trtmake("target=tiny_cnn_fp16", "backend=onnxruntime",
                   "backend.onnxruntime.graph_optimization_level=extended") == 0
    assert trtmake.statuses() == {**ALL_CACHED, "build": "built", "validate": "built"}


def test_changed_profile_does_not_rebuild_an_onnxruntime_engine(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert trtmake("target=tiny_cnn_fp32", "profile.shapes.input.opt=[2,3,32,32]") == 0
    st = trtmake.statuses()
    assert st["build"] == "cached" and st["precision"] == "cached"
    assert st["reference"] == "built" and st["validate"] == "built"


def test_revalidate_reruns_validation_only(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    assert trtmake("target=tiny_cnn_fp32", "revalidate=true") == 0
    assert trtmake.statuses() == {**ALL_CACHED, "validate": "built"}
