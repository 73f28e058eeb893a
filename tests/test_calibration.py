"""Calibration statistics: collected batch by batch, dialect-independent, stored byte-stably."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from int8_helpers import batches, image_like, run, tiny_cnn

from trtmake.errors import UserError
from trtmake.precision.calibration import CalibrationStats, collect_statistics, load_stats, quiet

BINS = 256  # onnxruntime's entropy search is O(bins^2) in Python: keep the tests fast


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_cnn(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def data():
    return image_like(48, seed=1)


@pytest.fixture(scope="module")
def stats(model, data, tmp_path_factory) -> CalibrationStats:
    return collect_statistics(model, batches(data, 8), "entropy", num_bins=BINS,
                              work_dir=tmp_path_factory.mktemp("work"))


def test_stats_round_trip_byte_identically(stats, tmp_path):
    stats.save(tmp_path / "a.npz")
    loaded = load_stats(tmp_path / "a.npz")
    loaded.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert loaded == stats
    assert loaded.ranges_for("percentile") == stats.ranges_for("percentile")


def test_same_data_gives_same_bytes(model, data, stats, tmp_path):
    again = collect_statistics(model, batches(data, 8), "entropy", num_bins=BINS, work_dir=tmp_path / "w")
    stats.save(tmp_path / "a.npz")
    again.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_records_every_float_tensor_and_the_sample_count(stats, data):
    assert stats.num_samples == len(data)
    assert {"input", "c1", "r1", "a2", "r3", "logits"} <= set(stats.tensors)
    assert set(stats.ranges) == set(stats.tensors)  # ranges of the method asked for are stored


def test_minmax_ranges_are_the_observed_extremes(stats, model, data):
    ranges = stats.ranges_for("minmax")
    assert ranges["input"] == (float(data.min()), float(data.max()))
    logits = run(model, data)
    assert ranges["logits"] == pytest.approx((logits.min(), logits.max()), rel=1e-5)


def test_the_same_stats_give_different_ranges_per_method(stats):
    entropy, minmax, percentile = (stats.ranges_for(m) for m in ("entropy", "minmax", "percentile"))
    lo_e, hi_e = entropy["r3"]
    lo_m, hi_m = minmax["r3"]
    assert lo_m == lo_e == 0.0  # after a Relu
    assert hi_e < hi_m  # entropy clips the tail
    assert percentile["r3"][1] <= hi_m
    assert {name: percentile[name] for name in percentile} != minmax
    assert stats.ranges_for("percentile", percentile=99.0)["r3"][1] < percentile["r3"][1]


def test_with_method_stores_that_methods_ranges(stats, tmp_path):
    percentile = stats.with_method("percentile", percentile=99.9)
    assert percentile.method == "percentile" and percentile.percentile == 99.9
    assert dict(percentile.ranges) == stats.ranges_for("percentile", percentile=99.9)
    assert percentile.tensors is stats.tensors  # the histograms are shared, not recomputed
    percentile.save(tmp_path / "p.npz")
    assert load_stats(tmp_path / "p.npz").ranges_for() == percentile.ranges_for()


def test_ranges_of_another_method_do_not_rerun_the_model(stats):
    derived = CalibrationStats(stats.method, stats.num_bins, stats.num_quantized_bins, stats.percentile,
                               stats.num_samples, stats.tensors)  # histograms only
    assert derived.ranges_for("entropy") == stats.ranges_for("entropy")


@pytest.mark.parametrize("method", ["entropy", "percentile", "minmax"])
def test_ranges_equal_onnxruntimes_own_calibrator_on_the_same_batches(model, data, tmp_path, method):
    """One histogram pass serves every method: each matches running that method's calibrator."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    ours = collect_statistics(model, batches(data, 8), "minmax", num_bins=BINS, preprocess=False,
                              work_dir=tmp_path / "w").ranges_for(method)
    kind = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
            "minmax": CalibrationMethod.MinMax}[method]
    with quiet():
        calibrator = create_calibrator(model, None, augmented_model_path=str(tmp_path / "aug.onnx"),
                                       calibrate_method=kind, extra_options={"num_bins": BINS, "symmetric": False})
        for feeds in batches(data, 8):
            calibrator.collect_data(_Once(feeds))
        theirs = calibrator.compute_data()
    assert set(theirs) == set(ours)
    for name in theirs:
        lo, hi = (float(np.ravel(v)[0]) for v in theirs[name].range_value)
        assert (lo, hi) == ours[name], name


class _Once:
    def __init__(self, feeds):
        self.feeds = feeds

    def get_next(self):
        feeds, self.feeds = self.feeds, None
        return feeds


def test_nan_or_inf_in_calibration_data_is_a_user_error(model, data, tmp_path):
    for bad in (np.nan, np.inf):
        x = data.copy()
        x[13, 1, 2, 3] = bad
        with pytest.raises(UserError, match="batch 1: input 'input' holds 1 NaN/Inf"):
            collect_statistics(model, batches(x, 8), "minmax", num_bins=BINS, work_dir=tmp_path)


@pytest.mark.parametrize(("feeds", "message"), [
    ({"image": np.zeros((2, 3, 16, 16), np.float32)}, "has inputs \\['image'\\] but tiny.onnx takes \\['input'\\]"),
    ({"input": np.zeros((2, 3, 16, 16), np.float64)}, "is float64 but tiny.onnx declares tensor\\(float\\)"),
    ({"input": np.zeros((2, 3, 8, 16), np.float32)}, "has 8 on axis 2"),
    ({"input": np.zeros((3, 16, 16), np.float32)}, "has shape \\[3, 16, 16\\]"),
])
def test_data_that_does_not_fit_the_model_is_a_user_error(model, tmp_path, feeds, message):
    with pytest.raises(UserError, match=message):
        collect_statistics(model, [feeds], "minmax", num_bins=BINS, work_dir=tmp_path)


def test_no_samples_is_a_user_error(model, tmp_path):
    with pytest.raises(UserError, match="no samples"):
        collect_statistics(model, [], "entropy", num_bins=BINS, work_dir=tmp_path)


def test_unknown_method_is_a_user_error(model, data, tmp_path):
    with pytest.raises(UserError, match="calibrator.method: unknown calibration method 'kl'"):
        collect_statistics(model, batches(data, 8), "kl", work_dir=tmp_path)


def test_damaged_stats_file_is_a_user_error(tmp_path):
    (tmp_path / "stats.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not readable calibration statistics"):
        load_stats(tmp_path / "stats.npz")


def test_work_dir_keeps_no_augmented_model(model, data, tmp_path):
    collect_statistics(model, batches(data, 8), "minmax", num_bins=BINS, work_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_number_of_batches(model, tmp_path):
    """Feeding onnxruntime's calibrator every batch at once keeps every activation of every
    batch until the end (the control below shows the measurement sees that); feeding one batch
    per collect_data call keeps one batch's worth, whatever the count."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    def ours(n):
        x = image_like(8 * n, seed=2)
        return _peak_bytes(lambda: collect_statistics(model, batches(x, 8), "minmax", num_bins=BINS,
                                                      work_dir=tmp_path / "w"))

    def all_at_once(n):
        x = image_like(8 * n, seed=2)

        class Reader:
            def __init__(self):
                self.it = batches(x, 8)

            def get_next(self):
                return next(self.it, None)

        def collect():
            with quiet():
                calibrator = create_calibrator(model, None, augmented_model_path=str(tmp_path / "aug.onnx"),
                                               calibrate_method=CalibrationMethod.Entropy,
                                               extra_options={"num_bins": BINS})
                calibrator.collect_data(Reader())
        return _peak_bytes(collect)

    ours(2), all_at_once(2)  # warm-up: first-call imports and caches
    assert all_at_once(32) > 2 * all_at_once(4)  # the control: growth is visible
    assert ours(32) < 1.25 * ours(4)


def test_pre_processing_leaves_nothing_in_the_current_folder(tmp_path, monkeypatch):
    """onnxruntime's symbolic shape inference writes sym_shape_infer_temp.onnx (and its data) into
    the current folder when it cannot infer every shape; prepare_model runs it elsewhere."""
    import onnxruntime.quantization as q

    from trtmake.precision.calibration import prepare_model

    def litter_then_write(src, dst, **kwargs):
        Path("sym_shape_infer_temp.onnx").write_bytes(b"partial")  # what onnxruntime does, relative to cwd
        Path(dst).write_bytes(Path(src).read_bytes())

    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.chdir(user)
    monkeypatch.setattr(q, "quant_pre_process", litter_then_write)
    import onnx
    from onnx import TensorProto, helper

    src = tmp_path / "model.onnx"
    onnx.save(helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])), str(src))
    out = prepare_model(src, tmp_path / "work" / "prepared.onnx")
    assert out.read_bytes() == src.read_bytes()
    assert list(user.iterdir()) == [] and Path.cwd() == user
