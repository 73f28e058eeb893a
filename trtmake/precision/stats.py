"""Calibration statistics: what one calibration pass saw, and every method's ranges from it.

For every float tensor: its min/max and a signed histogram over [-t, t] (onnxruntime's
HistogramCollector layout). Each method's range (entropy, minmax, percentile) is derived from
that record: percentile with onnxruntime's own code, entropy with `trtmake.precision.entropy`
(onnxruntime's KL search, vectorised, same thresholds), so statistics are dialect- and method-independent and a
second backend or another method never re-runs the model. Stored as a byte-stable .npz.

onnxruntime is imported inside the functions that need it (trtmake imports without it).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from trtmake.heavy import lazy_import

np = lazy_import("numpy")

from trtmake.errors import UserError
from trtmake.precision.entropy import entropy_ranges

METHODS = ("entropy", "minmax", "percentile")
FORMAT = "trtmake-calibration-stats"
FORMAT_VERSION = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed so that equal statistics give equal bytes

Range = tuple[float, float]


@dataclass(frozen=True)
class TensorStats:
    """What the calibrator saw of one tensor: its extremes and a signed histogram.

    `edges` span [-threshold, threshold] (onnxruntime's layout: symmetric about zero, bins grow
    outwards when a later batch exceeds the range), so every method can be derived from it.
    """

    min: float
    max: float
    threshold: float
    hist: np.ndarray  # int64 counts, len(edges) - 1
    edges: np.ndarray  # float32

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TensorStats)
            and (self.min, self.max, self.threshold) == (other.min, other.max, other.threshold)
            and np.array_equal(self.hist, other.hist)
            and np.array_equal(self.edges, other.edges)
        )


@dataclass(frozen=True)
class CalibrationStats:
    """Statistics of one calibration run, plus the ranges of the method it was asked for."""

    method: str
    num_bins: int
    num_quantized_bins: int
    percentile: float
    num_samples: int
    tensors: Mapping[str, TensorStats]
    ranges: Mapping[str, Range] = field(default_factory=dict)  # for `method`, by tensor name
    preprocessed: bool = True  # collected on prepare_model's graph (quantize must use the same)

    def ranges_for(
        self, method: str | None = None, *, percentile: float | None = None,
        num_quantized_bins: int | None = None,
    ) -> dict[str, Range]:
        """Each tensor's (low, high) for `method`; stored ranges are reused when they match."""
        return derive_ranges(self, method or self.method, percentile=percentile,
                             num_quantized_bins=num_quantized_bins)

    def with_method(
        self, method: str, *, percentile: float | None = None, num_quantized_bins: int | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> "CalibrationStats":
        """A copy whose stored ranges are `method`'s: derive once, quantize many times.
        `on_progress(done, total)` counts tensors as their ranges are derived."""
        ranges = derive_ranges(self, method, percentile=percentile, num_quantized_bins=num_quantized_bins,
                               on_progress=on_progress)
        return replace(self, method=method, ranges=ranges,
                       percentile=self.percentile if percentile is None else float(percentile),
                       num_quantized_bins=self.num_quantized_bins if num_quantized_bins is None
                       else int(num_quantized_bins))

    def save(self, path: Path) -> None:
        save_stats(self, path)

    @staticmethod
    def load(path: Path) -> "CalibrationStats":
        return load_stats(path)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """onnxruntime.quantization prints progress and logs warnings; library code stays silent."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def check_method(method: str, key: str = "calibrator.method") -> str:
    if method not in METHODS:
        raise UserError(f"{key}: unknown calibration method '{method}'; choose one of {list(METHODS)}")
    return method


def check_params(num_bins: int, num_quantized_bins: int, percentile: float) -> None:
    if not 0 < num_quantized_bins <= num_bins:
        raise UserError(f"calibrator.num_quantized_bins must be in 1..num_bins ({num_bins}), got {num_quantized_bins}")
    if not 0.0 < percentile <= 100.0:
        raise UserError(f"calibrator.percentile must be in (0, 100], got {percentile}")


def derive_ranges(
    stats: CalibrationStats, method: str, *, percentile: float | None = None,
    num_quantized_bins: int | None = None, on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> dict[str, Range]:
    """Each tensor's (low, high) under `method`, as onnxruntime's HistogramCollector computes it.

    minmax: the observed extremes. entropy: the KL-divergence threshold of TensorRT's
    calibrator (num_quantized_bins levels), searched in `workers` processes (default: the
    cores). percentile: two-sided, cutting (100 - p) / 2 percent of the values on each side (a
    symmetric dialect then takes the larger magnitude). `on_progress(done, total)` counts tensors.
    """
    check_method(method)
    percentile = stats.percentile if percentile is None else float(percentile)
    levels = stats.num_quantized_bins if num_quantized_bins is None else int(num_quantized_bins)
    check_params(stats.num_bins, levels, percentile)
    total = len(stats.tensors)
    if method == "minmax":
        return {name: (t.min, t.max) for name, t in stats.tensors.items()}
    if stats.ranges and method == stats.method and (percentile, levels) == (stats.percentile, stats.num_quantized_bins):
        return dict(stats.ranges)
    if method == "entropy":
        return entropy_ranges({name: (t.hist, t.edges, t.min, t.max) for name, t in stats.tensors.items()},
                              levels, workers=workers, on_progress=on_progress)
    from onnxruntime.quantization.calibrate import HistogramCollector

    collector = HistogramCollector(method, False, stats.num_bins, levels, percentile, "same")
    collector.histogram_dict = {
        name: (t.hist, t.edges, np.float32(t.min), np.float32(t.max), np.float32(t.threshold))
        for name, t in stats.tensors.items()
    }
    with quiet():
        result = collector.compute_collection_result()
    if on_progress is not None:
        on_progress(total, total)
    return {name: (float(result[name][0]), float(result[name][1])) for name in sorted(result)}


def save_stats(stats: CalibrationStats, path: Path) -> None:
    """Write `stats` as an .npz (a zip of .npy files plus meta.json) whose bytes depend only on
    the statistics: sorted names, fixed timestamps, no compression."""
    names = sorted(stats.tensors)
    meta = {
        "format": FORMAT, "version": FORMAT_VERSION, "method": stats.method, "num_bins": stats.num_bins,
        "num_quantized_bins": stats.num_quantized_bins, "percentile": stats.percentile,
        "num_samples": stats.num_samples, "preprocessed": stats.preprocessed,
        "tensors": [
            {"name": n, "min": stats.tensors[n].min, "max": stats.tensors[n].max,
             "threshold": stats.tensors[n].threshold, "range": list(stats.ranges[n]) if n in stats.ranges else None}
            for n in names
        ],
    }
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        _write_entry(zf, "meta.json", json.dumps(meta, sort_keys=True, indent=1).encode())
        for i, name in enumerate(names):
            _write_entry(zf, f"hist_{i:05d}.npy", _npy_bytes(stats.tensors[name].hist.astype(np.int64)))
            _write_entry(zf, f"edges_{i:05d}.npy", _npy_bytes(stats.tensors[name].edges.astype(np.float32)))


def load_stats(path: Path) -> CalibrationStats:
    """Read statistics written by `save_stats`; a damaged or foreign file is a UserError."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("meta.json"))
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format {meta.get('format')} v{meta.get('version')}")
            tensors, ranges = {}, {}
            for i, entry in enumerate(meta["tensors"]):
                hist = np.load(io.BytesIO(zf.read(f"hist_{i:05d}.npy")), allow_pickle=False)
                edges = np.load(io.BytesIO(zf.read(f"edges_{i:05d}.npy")), allow_pickle=False)
                tensors[entry["name"]] = TensorStats(entry["min"], entry["max"], entry["threshold"], hist, edges)
                if entry["range"] is not None:
                    ranges[entry["name"]] = (entry["range"][0], entry["range"][1])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not readable calibration statistics ({exc}); delete it to recalibrate") from None
    return CalibrationStats(meta["method"], meta["num_bins"], meta["num_quantized_bins"], meta["percentile"],
                            meta["num_samples"], tensors, ranges, meta["preprocessed"])


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _write_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
