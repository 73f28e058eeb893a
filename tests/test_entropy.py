"""The vectorised entropy (KL) search picks onnxruntime's own thresholds, in a process pool."""

from __future__ import annotations

import numpy as np
import pytest
from int8_helpers import batches, image_like, tiny_cnn

from trtmake.precision.calibration import collect_statistics
from trtmake.precision.entropy import entropy_ranges, entropy_threshold

BINS = 1024  # onnxruntime's search is O(bins^2) in Python: real histograms, affordable reference


def _onnxruntime_threshold(hist, edges, lo, hi, levels):
    from onnxruntime.quantization.calibrate import HistogramCollector

    collector = HistogramCollector("entropy", False, hist.size, levels, 99.999, "same")
    low, high = collector.get_entropy_threshold((hist, edges, np.float32(lo), np.float32(hi), None), levels)
    return float(low), float(high)


@pytest.fixture(scope="module")
def histograms(tmp_path_factory):
    """Every float tensor of a real model run on image-like data: min/max and a signed histogram."""
    model = tiny_cnn(tmp_path_factory.mktemp("model") / "tiny.onnx")
    stats = collect_statistics(model, batches(image_like(32, seed=3), 8), "minmax", num_bins=BINS,
                               work_dir=tmp_path_factory.mktemp("work"))
    return {name: (t.hist, t.edges, t.min, t.max) for name, t in stats.tensors.items()}


@pytest.mark.parametrize("levels", [128, 255])
def test_thresholds_equal_onnxruntimes_on_real_histograms(histograms, levels):
    assert len(histograms) >= 6
    for name, (hist, edges, lo, hi) in histograms.items():
        ours = entropy_threshold(hist, edges, lo, hi, levels)
        assert ours == pytest.approx(_onnxruntime_threshold(hist, edges, lo, hi, levels), rel=1e-6, abs=1e-12), name


def _histogram(rng, bins, kind):
    if kind == "uniform":
        return rng.integers(0, 50, bins)
    if kind == "sparse":  # mostly empty bins: large smoothing shifts, levels with no counts
        return (rng.random(bins) < 0.2) * rng.integers(1, 1000, bins)
    if kind == "normal":  # empty tails on both sides
        return np.histogram(rng.standard_normal(5000) * rng.random(), bins=bins, range=(-3, 3))[0]
    hist = np.zeros(bins, np.int64)  # a few spikes: many windows tie at KL 0
    hist[rng.integers(0, bins, 3)] = rng.integers(1, 10, 3)
    return hist


@pytest.mark.parametrize("kind", ["uniform", "sparse", "normal", "spikes"])
def test_thresholds_equal_onnxruntimes_on_odd_shapes_and_ties(kind):
    rng = np.random.default_rng(7)
    for _ in range(40):
        bins = int(rng.choice([8, 16, 33, 64, 130, 256]))
        levels = int(rng.choice([1, 2, 3, max(1, bins // 4), bins // 2, int(rng.integers(1, bins // 2 + 1))]))
        hist = _histogram(rng, bins, kind).astype(np.int64)
        edges = np.linspace(-3, 3, bins + 1).astype(np.float32)
        ours = entropy_threshold(hist, edges, -2.5, 2.9, levels)
        assert ours == pytest.approx(_onnxruntime_threshold(hist, edges, -2.5, 2.9, levels), rel=1e-6), (bins, levels)


def test_the_process_pool_gives_the_serial_ranges_and_counts_every_tensor(histograms):
    many = {f"{name}#{i}": h for i in range(3) for name, h in histograms.items()}  # enough to use the pool
    calls: list[tuple[int, int]] = []
    pooled = entropy_ranges(many, 128, workers=2, on_progress=lambda done, total: calls.append((done, total)))
    assert pooled == entropy_ranges(many, 128, workers=1)
    assert list(pooled) == sorted(many)
    assert calls == [(i, len(many)) for i in range(1, len(many) + 1)]


def test_more_quantized_bins_than_the_histogram_holds_is_refused():
    with pytest.raises(ValueError, match="cannot hold"):
        entropy_threshold(np.ones(8, np.int64), np.linspace(-1, 1, 9, dtype=np.float32), -1, 1, 32)
