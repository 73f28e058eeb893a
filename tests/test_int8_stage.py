"""On real onnxruntime runs: calibration is its own cached stage, reused by
everything downstream; mixed precision is reported; bad calibration data is a clear error."""

import numpy as np
import pytest


def _npz_folder(folder, n, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        np.savez(folder / f"s{i:03d}.npz", input=rng.standard_normal((3, 32, 32)).astype(np.float32))
    return folder


def test_int8_target_builds_validates_and_reports_quantization(trtmake):
    assert trtmake("target=tiny_cnn_int8") == 0
    t = trtmake.report["targets"][0]
    st = {s["name"]: s["status"] for s in t["stages"]}
    assert st["calibrate"] == "built" and st["precision"] == "built"
    assert t["precision"]["dialect"] == "onnxruntime"
    assert t["precision"]["quantized_nodes"] > 0
    assert "float_nodes" in t["precision"]
    assert t["metrics"]["cosine_similarity"] > 0.99


@pytest.mark.parametrize("override", [
    "backend.onnxruntime.graph_optimization_level=extended",   # build option
    "validation.max_latency_p99_ms=1000",                       # assertion
    "profile.shapes.input.max=[8,3,32,32]",                     # profile
])
def test_changing_build_options_profiles_or_assertions_never_recalibrates(trtmake, override):
    assert trtmake("target=tiny_cnn_int8") == 0
    assert trtmake("target=tiny_cnn_int8", override) == 0
    st = trtmake.statuses()
    assert st["calibrate"] == "cached" and st["precision"] == "cached"


def test_changing_one_calibration_sample_recalibrates(trtmake, tmp_path):
    folder = _npz_folder(tmp_path / "calib", 16)
    args = ("target=tiny_cnn_int8", "dataset.calibration.kind=npy", f"dataset.calibration.path={folder}")
    assert trtmake(*args) == 0
    assert trtmake(*args) == 0 and trtmake.statuses()["calibrate"] == "cached"
    np.savez(folder / "s005.npz", input=np.full((3, 32, 32), 3.0, np.float32))
    assert trtmake(*args) == 0
    assert trtmake.statuses()["calibrate"] == "built"


def test_switching_method_rederives_ranges_without_recalibrating(trtmake):
    """The calibration stage keeps histograms; method/percentile/num_quantized_bins only change how
    the precision stage derives ranges from them, so switching never re-runs the model."""
    assert trtmake("target=tiny_cnn_int8") == 0
    entropy = trtmake.report["targets"][0]
    assert trtmake("target=tiny_cnn_int8", "calibrator=percentile", "calibrator.percentile=99.9") == 0
    st = trtmake.statuses()
    assert st["calibrate"] == "cached" and st["precision"] == "built"
    percentile = trtmake.report["targets"][0]
    assert percentile["precision"]["method"] == "percentile" and entropy["precision"]["method"] == "entropy"
    key = {t["name"]: t["key"] for t in (s for s in percentile["stages"])}
    assert key["precision"] != {t["name"]: t["key"] for t in entropy["stages"]}["precision"]
    assert trtmake("target=tiny_cnn_int8", "calibrator=entropy", "calibrator.num_quantized_bins=64") == 0
    st = trtmake.statuses()
    assert st["calibrate"] == "cached" and st["precision"] == "built"


def test_histogram_resolution_does_recalibrate(trtmake):
    assert trtmake("target=tiny_cnn_int8") == 0
    assert trtmake("target=tiny_cnn_int8", "calibrator.num_bins=1024") == 0
    assert trtmake.statuses()["calibrate"] == "built"


def test_excluded_nodes_stay_float(trtmake):
    assert trtmake("target=tiny_cnn_int8") == 0
    base = trtmake.report["targets"][0]["precision"]
    assert trtmake("target=tiny_cnn_int8", "precision.exclude_op_types=[Conv]") == 0
    p = trtmake.report["targets"][0]["precision"]
    assert p["nodes"].get("Conv", {}).get("quantized", 0) == 0
    assert p["quantized_nodes"] < base["quantized_nodes"]


@pytest.mark.parametrize("make, words", [
    (lambda d: d.mkdir(), ["dataset.calibration.path", "no .npy/.npz files"]),
    (lambda d: _npz_folder(d, 3), ["3 samples", "16 are asked"]),
    (lambda d: (_npz_folder(d, 16), np.savez(d / "s000.npz", input=np.full((3, 32, 32), np.nan, np.float32))),
     ["NaN or Inf"]),
    (lambda d: (d.mkdir(), [np.savez(d / f"s{i}.npz", image=np.zeros((3, 32, 32), np.float32)) for i in range(16)]),
     ["do not match the model's inputs", "input"]),
    (lambda d: (d.mkdir(), [np.save(d / f"s{i}.npy", np.zeros((3, 16, 16), np.float32)) for i in range(16)]),
     ["shape [3, 16, 16]", "expected [3, 32, 32]"]),
])
def test_bad_calibration_data_is_one_line_exit_2_nothing_cached(trtmake, tmp_path, make, words):
    folder = tmp_path / "calib"
    make(folder)
    assert trtmake("target=tiny_cnn_int8", "dataset.calibration.kind=npy", f"dataset.calibration.path={folder}") == 2
    err = trtmake.last_err.strip()
    assert len(err.splitlines()) == 1
    for w in words:
        assert w in err, (w, err)
    calib = [p for p in trtmake.cache_files() if "actions" in p.parts and '"stage": "calibrate"' in p.read_text()]
    assert calib == []


def test_auto_exclude_records_its_steps_and_is_cached(trtmake):
    args = ("target=tiny_cnn_int8", "precision.auto_exclude.enabled=true", "precision.auto_exclude.target=1.01",
            "precision.auto_exclude.max_layers=2", "precision.auto_exclude.metric=cosine_similarity")
    assert trtmake(*args) in (0, 1)
    p = trtmake.report["targets"][0]["precision"]
    ae = p["auto_exclude"]
    assert ae["reached"] is False and len(ae["excluded"]) == 2 and ae["steps"]
    assert [s["phase"] for s in ae["steps"]][0] == "baseline"
    assert all(len(s["excluded"]) <= 2 for s in ae["steps"])
    assert p["float_layers"] == 2 and set(ae["excluded"]) <= set(p["excluded"])
    assert trtmake(*args) in (0, 1)
    assert trtmake.statuses()["precision"] == "cached"


def test_auto_exclude_ranks_every_quantizable_layer_on_a_split_other_than_validation(trtmake):
    """Every Conv/Gemm is a candidate (not the first N in graph order), and the search measures
    on fresh samples: the validation assertions judge data the search never saw."""
    args = ("target=tiny_cnn_int8", "precision.auto_exclude.enabled=true", "precision.auto_exclude.target=1.01",
            "precision.auto_exclude.max_layers=1", "precision.auto_exclude.metric=cosine_similarity")
    assert trtmake(*args) in (0, 1)
    ae = trtmake.report["targets"][0]["precision"]["auto_exclude"]
    assert set(ae["sensitivity"]) == {"conv1", "conv2", "conv3", "fc"} and ae["candidates"] == 4
    assert ae["excluded"] == [max(ae["sensitivity"], key=ae["sensitivity"].get)]
    assert "validation" in ae["selection"] and "seed" in ae["selection"]
    # the selection split is keyed: other samples, another search (calibration is kept)
    assert trtmake(*args, "dataset.validation.seed=5") in (0, 1)
    st = trtmake.statuses()
    assert st["precision"] == "built" and st["calibrate"] == "cached"
