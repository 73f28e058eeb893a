"""Calibration statistics: per-tensor ranges and histograms, collected once per model + dataset.

The statistics are dialect-independent (DESIGN.md section 2): one pass of onnxruntime's
histogram calibrator records, for every float tensor, its min/max and a signed histogram over
[-t, t]. Every method's range (entropy, minmax, percentile) is derived from that record with
onnxruntime's own code, so a second backend or a different method never re-runs the model.

Memory: onnxruntime's HistogramCalibrater keeps every intermediate output of every batch handed
to one `collect_data` call. `collect_statistics` hands it one batch per call, so peak memory is
one batch of activations plus the histograms, whatever the sample count.

onnxruntime is imported inside the functions that need it (trtmake imports without it).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from trtmake.errors import BuildFailed, UserError

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

    def ranges_for(
        self, method: str | None = None, *, percentile: float | None = None,
        num_quantized_bins: int | None = None,
    ) -> dict[str, Range]:
        """Each tensor's (low, high) for `method`; stored ranges are reused when they match."""
        return derive_ranges(self, method or self.method, percentile=percentile,
                             num_quantized_bins=num_quantized_bins)

    def save(self, path: Path) -> None:
        save_stats(self, path)

    @staticmethod
    def load(path: Path) -> "CalibrationStats":
        return load_stats(path)


class _OneBatch:
    """A CalibrationDataReader over exactly one batch (so the calibrator keeps one at a time)."""

    def __init__(self, feeds: dict[str, np.ndarray]):
        self._feeds: dict[str, np.ndarray] | None = feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        feeds, self._feeds = self._feeds, None
        return feeds


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


def collect_statistics(
    model_path: Path,
    batches: Iterable[dict[str, np.ndarray]],
    method: str = "entropy",
    *,
    num_bins: int = 2048,
    num_quantized_bins: int = 128,
    percentile: float = 99.999,
    work_dir: Path,
) -> CalibrationStats:
    """Run the model on every batch and record each float tensor's range and histogram.

    `batches` yields feeds by input name (arrays with the batch on axis 0); it is consumed once,
    one batch at a time. Raises UserError for data that does not fit the model or is not finite.
    """
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    check_method(method)
    _check_params(num_bins, num_quantized_bins, percentile)
    model_path = Path(model_path)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    augmented = work_dir / "calibration_augmented.onnx"
    options = {"num_bins": num_bins, "num_quantized_bins": num_quantized_bins, "symmetric": False}
    try:
        with quiet():
            calibrator = create_calibrator(
                model_path,
                None,  # every float tensor: the statistics serve every dialect's op selection
                augmented_model_path=str(augmented),
                calibrate_method=CalibrationMethod.Entropy,  # signed histograms, see TensorStats
                use_external_data_format=_has_external_data(model_path),
                extra_options=options,
            )
    except Exception as exc:  # onnx/onnxruntime raise many types for a model they cannot load
        raise BuildFailed(f"calibration: cannot prepare {model_path.name} for calibration: {exc}") from exc
    try:
        inputs = {i.name: i for i in calibrator.infer_session.get_inputs()}
        num_samples = 0
        for index, feeds in enumerate(batches):
            num_samples += _check_batch(index, feeds, inputs, model_path.name)
            _run_batch(calibrator, feeds, index)
        if num_samples == 0:
            raise UserError("calibration: the dataset gave no samples; point dataset at a folder with samples")
        histograms = calibrator.collector.histogram_dict
    finally:
        del calibrator
        for path in work_dir.glob("calibration_augmented.onnx*"):
            path.unlink(missing_ok=True)
    tensors = {
        name: TensorStats(float(lo), float(hi), float(thr), np.asarray(hist, np.int64), np.asarray(edges, np.float32))
        for name, (hist, edges, lo, hi, thr) in sorted(histograms.items())
    }
    stats = CalibrationStats(method, num_bins, num_quantized_bins, float(percentile), num_samples, tensors)
    return replace(stats, ranges=derive_ranges(stats, method))


def _run_batch(calibrator, feeds: dict[str, np.ndarray], index: int) -> None:
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    try:
        with quiet():
            calibrator.collect_data(_OneBatch(feeds))
    except InvalidArgument as exc:
        raise UserError(f"calibration: batch {index} does not fit the model: {exc}") from None
    except Exception as exc:
        raise BuildFailed(f"calibration: running batch {index} failed: {exc}") from exc


def _check_batch(index: int, feeds: dict, inputs: dict, model: str) -> int:
    """Validate one batch against the model's inputs; return its sample count."""
    where = f"calibration batch {index}"
    if not isinstance(feeds, Mapping) or set(feeds) != set(inputs):
        got = sorted(feeds) if isinstance(feeds, Mapping) else type(feeds).__name__
        raise UserError(f"{where} has inputs {got} but {model} takes {sorted(inputs)}; key the dataset by input name")
    counts = set()
    for name, arr in feeds.items():
        spec = inputs[name]
        want = _ORT_TYPES.get(spec.type)
        if not isinstance(arr, np.ndarray) or (want is not None and arr.dtype != want):
            got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise UserError(f"{where}: input '{name}' is {got} but {model} declares {spec.type}; set dataset dtype")
        if arr.ndim != len(spec.shape):
            raise UserError(f"{where}: input '{name}' has shape {list(arr.shape)} but {model} declares {spec.shape}")
        for axis, (got, dim) in enumerate(zip(arr.shape, spec.shape)):
            if isinstance(dim, int) and dim > 0 and got != dim:
                raise UserError(f"{where}: input '{name}' has {got} on axis {axis} but {model} declares {spec.shape}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise UserError(f"{where}: input '{name}' holds {bad} NaN/Inf values; clean the calibration data")
        counts.add(arr.shape[0] if arr.ndim else 1)
    if len(counts) > 1:
        raise UserError(f"{where}: inputs disagree on the batch size {sorted(counts)}")
    return counts.pop() if counts else 0


_ORT_TYPES = {
    "tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64), "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32), "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8), "tensor(bool)": np.dtype(np.bool_),
}


def _check_params(num_bins: int, num_quantized_bins: int, percentile: float) -> None:
    if not 0 < num_quantized_bins <= num_bins:
        raise UserError(f"calibrator.num_quantized_bins must be in 1..num_bins ({num_bins}), got {num_quantized_bins}")
    if not 0.0 < percentile <= 100.0:
        raise UserError(f"calibrator.percentile must be in (0, 100], got {percentile}")


def _has_external_data(model_path: Path) -> bool:
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def derive_ranges(
    stats: CalibrationStats, method: str, *, percentile: float | None = None,
    num_quantized_bins: int | None = None,
) -> dict[str, Range]:
    """Each tensor's (low, high) under `method`, computed by onnxruntime's HistogramCollector.

    minmax: the observed extremes. entropy: the KL-divergence threshold of TensorRT's
    calibrator (num_quantized_bins levels). percentile: two-sided, cutting (100 - p) / 2 percent
    of the values on each side (a symmetric dialect then takes the larger magnitude).
    """
    from onnxruntime.quantization.calibrate import HistogramCollector

    check_method(method)
    percentile = stats.percentile if percentile is None else float(percentile)
    levels = stats.num_quantized_bins if num_quantized_bins is None else int(num_quantized_bins)
    _check_params(stats.num_bins, levels, percentile)
    if method == "minmax":
        return {name: (t.min, t.max) for name, t in stats.tensors.items()}
    if stats.ranges and method == stats.method and (percentile, levels) == (stats.percentile, stats.num_quantized_bins):
        return dict(stats.ranges)
    collector = HistogramCollector(method, False, stats.num_bins, levels, percentile, "same")
    collector.histogram_dict = {
        name: (t.hist, t.edges, np.float32(t.min), np.float32(t.max), np.float32(t.threshold))
        for name, t in stats.tensors.items()
    }
    with quiet():
        result = collector.compute_collection_result()
    return {name: (float(result[name][0]), float(result[name][1])) for name in sorted(result)}


def save_stats(stats: CalibrationStats, path: Path) -> None:
    """Write `stats` as an .npz (a zip of .npy files plus meta.json) whose bytes depend only on
    the statistics: sorted names, fixed timestamps, no compression."""
    names = sorted(stats.tensors)
    meta = {
        "format": FORMAT, "version": FORMAT_VERSION, "method": stats.method, "num_bins": stats.num_bins,
        "num_quantized_bins": stats.num_quantized_bins, "percentile": stats.percentile,
        "num_samples": stats.num_samples,
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
                            meta["num_samples"], tensors, ranges)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _write_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
