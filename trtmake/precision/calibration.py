"""Calibration: run the model on the calibration batches and record per-tensor statistics.

One pass of onnxruntime's histogram calibrator (create_calibrator + collect_data) records, for
every float tensor, its min/max and a signed histogram (see `trtmake.precision.stats`); every
method's ranges are derived from that record, for either QDQ dialect (docs/design.md §2).

Memory: onnxruntime's HistogramCalibrater keeps every intermediate output of every batch handed
to one `collect_data` call. `collect_statistics` hands it one batch per call, so peak memory is
one batch of activations plus the histograms, whatever the sample count.

onnxruntime is imported inside the functions that need it (trtmake imports without it).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from trtmake.heavy import lazy_import

np = lazy_import("numpy")
onnx = lazy_import("onnx")

from trtmake.errors import BuildFailed, UserError
from trtmake.precision.stats import (
    METHODS, CalibrationStats, TensorStats, check_method, check_params, derive_ranges, load_stats, quiet, save_stats,
)

__all__ = [  # the statistics types and their file format live in stats.py; one import place
    "METHODS", "CalibrationStats", "TensorStats", "check_method", "collect_statistics", "copy_model",
    "derive_ranges", "load_stats", "prepare_model", "quiet", "save_stats",
]


class _OneBatch:
    """A CalibrationDataReader over exactly one batch (so the calibrator keeps one at a time)."""

    def __init__(self, feeds: dict[str, np.ndarray]):
        self._feeds: dict[str, np.ndarray] | None = feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        feeds, self._feeds = self._feeds, None
        return feeds


def collect_statistics(
    model_path: Path,
    batches: Iterable[dict[str, np.ndarray]],
    method: str = "entropy",
    *,
    num_bins: int = 2048,
    num_quantized_bins: int = 128,
    percentile: float = 99.999,
    preprocess: bool = True,
    work_dir: Path,
) -> CalibrationStats:
    """Run the model on every batch and record each float tensor's range and histogram.

    `batches` yields feeds by input name (arrays with the batch on axis 0); it is consumed once,
    one batch at a time. With `preprocess`, the graph is first put through `prepare_model` (and
    `quantize` does the same, so tensor names match). Raises UserError for data that does not
    fit the model or is not finite.
    """
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    check_method(method)
    check_params(num_bins, num_quantized_bins, percentile)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    name = Path(model_path).name
    # onnxruntime writes "<model>-inferred.onnx" next to the model it calibrates: work on a copy.
    prepared = work_dir / "calibration_prepared.onnx"
    model_path = prepare_model(model_path, prepared) if preprocess else copy_model(model_path, prepared)
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
        raise BuildFailed(f"calibration: cannot prepare {name} for calibration: {exc}") from exc
    try:
        inputs = {i.name: i for i in calibrator.infer_session.get_inputs()}
        num_samples = 0
        for index, feeds in enumerate(batches):
            num_samples += _check_batch(index, feeds, inputs, name)
            _run_batch(calibrator, feeds, index)
        if num_samples == 0:
            raise UserError("calibration: the dataset gave no samples; point dataset at a folder with samples")
        histograms = calibrator.collector.histogram_dict
    finally:
        del calibrator
        for path in [*work_dir.glob("calibration_augmented.onnx*"), *work_dir.glob("calibration_prepared.*")]:
            path.unlink(missing_ok=True)
    tensors = {
        name: TensorStats(float(lo), float(hi), float(thr), np.asarray(hist, np.int64), np.asarray(edges, np.float32))
        for name, (hist, edges, lo, hi, thr) in sorted(histograms.items())
    }
    stats = CalibrationStats(method, num_bins, num_quantized_bins, float(percentile), num_samples, tensors,
                             preprocessed=preprocess)
    return replace(stats, ranges=derive_ranges(stats, method))


def prepare_model(model_path: Path, out_path: Path) -> Path:
    """onnxruntime's quantization pre-processing: shape inference plus the portable (basic level)
    graph optimizations: constant folding, Pad and BatchNormalization folded into Conv. Layer
    nodes keep their names. Deterministic for one onnxruntime version. Returns `out_path`."""
    from onnxruntime.quantization import quant_pre_process

    model_path, out_path = Path(model_path), Path(out_path)
    symbolic = importlib.util.find_spec("sympy") is not None  # symbolic shape inference needs it
    external = _has_external_data(model_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # onnxruntime's symbolic shape inference saves a partial result into the current folder
    # (sym_shape_infer_temp.onnx and its data) when it cannot infer every shape: run it from the
    # stage's work folder, which is removed with it, not from the user's
    here = os.getcwd()
    os.chdir(out_path.parent)
    try:
        with quiet():
            quant_pre_process(str(model_path.resolve()), str(out_path.resolve()), skip_symbolic_shape=not symbolic,
                              save_as_external_data=external, all_tensors_to_one_file=True,
                              external_data_location=f"{out_path.name}.data" if external else None)
    except Exception as exc:  # shape inference and the optimizer raise many types
        raise BuildFailed(f"int8: pre-processing {model_path.name} for quantization failed: {exc}") from exc
    finally:
        os.chdir(here)
    return out_path


def copy_model(model_path: Path, out_path: Path) -> Path:
    """A private copy (with its external data) for tools that write files next to their input."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    external = _has_external_data(Path(model_path))
    onnx.save(onnx.load(str(model_path)), str(out_path), save_as_external_data=external,
              all_tensors_to_one_file=True, location=f"{out_path.name}.data")
    return out_path


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


# onnxruntime's type names -> numpy dtype names
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
              "tensor(bool)": "bool"}


def _has_external_data(model_path: Path) -> bool:
    model = onnx.load(str(model_path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
