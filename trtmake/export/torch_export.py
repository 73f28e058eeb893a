"""PyTorch -> ONNX export with the TorchScript exporter, on CPU, in eval mode, deterministic.

torch is imported only inside `export_onnx` (optional `torch` extra). The result is checked
with onnx.checker, its declared names and dynamic axes are verified, and its outputs are
compared with the module's on the seeded example input before the file is published
(temp folder + os.replace), so a failed export leaves nothing at `out_path`.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import time
import warnings
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Mapping

from trtmake.errors import BuildFailed, MissingDependency, UserError
from trtmake.export.factory import build_module, weights_path
from trtmake.export.spec import ExportSpec
from trtmake.heavy import lazy_import

np = lazy_import("numpy")
onnx = lazy_import("onnx")

INSTALL_HINT = "pip install 'trtmake[torch]'"
OnnxRun = Callable[[Path, Mapping[str, "np.ndarray"]], Mapping[str, "np.ndarray"]]


def torch_available() -> bool:
    """Whether torch is installed, without importing it."""
    return find_spec("torch") is not None


def require_torch(what: str = "the PyTorch export (model.export)") -> None:
    """Raise a one-line MissingDependency when torch is not installed."""
    if not torch_available():
        raise MissingDependency(f"{what} needs PyTorch: {INSTALL_HINT}")


def export_onnx(spec: ExportSpec, out_path: Path, run_onnx: OnnxRun | None = None) -> dict[str, Any]:
    """Export the spec's module to `out_path` and return facts about the export.

    `run_onnx(path, feeds) -> {name: array}` runs the exported graph for the parity check;
    the default is onnx's reference evaluator (no onnxruntime import outside backends/).
    """
    require_torch()
    import torch

    started = time.perf_counter()
    out_path = Path(out_path)
    module, feeds = _prepare(spec, torch)
    with torch.no_grad():
        expected = _flatten(module(*feeds))
    if len(expected) != len(spec.output_names):
        raise UserError(f"{spec.key}.output_names: declares {len(spec.output_names)} outputs, "
                        f"the module returns {len(expected)} tensors")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent))
    try:
        tmp = tmpdir / out_path.name
        caught = _run_exporter(spec, module, feeds, tmp, torch)
        graph = _check(spec, tmp)
        np_feeds = {i.name: _to_numpy(t) for i, t in zip(spec.inputs, feeds)}
        diffs = _parity(spec, tmp, np_feeds, expected, run_onnx or _reference_run)
        files = _publish(tmpdir, out_path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return {
        "exporter": "torchscript",
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": graph["opset"],
        "inputs": graph["inputs"],
        "outputs": graph["outputs"],
        "dynamic_axes": graph["dynamic_axes"],
        "node_count": graph["node_count"],
        "max_abs_diff": max(diffs.values()) if diffs and None not in diffs.values() else None,
        "max_abs_diff_per_output": diffs,
        "size_bytes": out_path.stat().st_size,
        "files": files,
        "warnings": caught,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _prepare(spec: ExportSpec, torch: Any) -> tuple[Any, tuple[Any, ...]]:
    """Build the module (seeded), load weights, eval mode on CPU, make seeded example inputs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        module = build_module(spec)
    if not isinstance(module, torch.nn.Module):
        raise UserError(f"{spec.key}.factory: {spec.factory!r} returned {type(module).__name__}, "
                        "not a torch.nn.Module")
    path = weights_path(spec)
    if path is not None:
        _load_weights(spec, module, path, torch)
    module = module.to("cpu").eval()
    gen = torch.Generator().manual_seed(spec.seed)
    feeds = tuple(_example(i.shape, i.dtype, gen, torch) for i in spec.inputs)
    return module, feeds


def _load_weights(spec: ExportSpec, module: Any, path: Path, torch: Any) -> None:
    key = f"{spec.key}.weights_from" if spec.weights_from else f"{spec.key}.weights"
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - unpickling errors have many types
        first = str(exc).split(". ")[0].splitlines()[0] if str(exc) else ""
        raise UserError(f"{key}: cannot load {str(path)!r} as a plain state_dict with "
                        f"torch.load(weights_only=True) ({type(exc).__name__}: {first})") from None
    if not isinstance(state, Mapping):
        raise UserError(f"{key}: {str(path)!r} holds {type(state).__name__}, not a state_dict")
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        raise UserError(f"{key}: {str(path)!r} does not match the module: "
                        f"{' '.join(str(exc).split())[:300]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise UserError(f"{key}: {str(path)!r} does not match the module: "
                        f"missing {list(result.missing_keys)[:3]}, unexpected {list(result.unexpected_keys)[:3]}")


def _example(shape: tuple[int, ...], dtype: str, gen: Any, torch: Any) -> Any:
    """Floats ~ N(0, 1); integers and bools in {0, 1} (valid ids, masks and token types)."""
    tdtype = getattr(torch, dtype)
    if tdtype.is_floating_point:
        return torch.randn(shape, generator=gen, dtype=torch.float32).to(tdtype)
    return torch.randint(0, 2, shape, generator=gen, dtype=torch.int64).to(tdtype)


def _run_exporter(spec: ExportSpec, module: Any, feeds: tuple[Any, ...], tmp: Path, torch: Any) -> list[str]:
    kwargs: dict[str, Any] = dict(
        input_names=[i.name for i in spec.inputs],
        output_names=list(spec.output_names),
        dynamic_axes={n: dict(ax) for n, ax in spec.dynamic_axes.items()} or None,
        opset_version=spec.opset,
        do_constant_folding=True,
        export_params=True,
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch >= 2.5 has the flag; >= 2.9 defaults it to True
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        try:
            torch.onnx.export(module, feeds, str(tmp), **kwargs)
        except Exception as exc:  # noqa: BLE001 - exporter failures have many types
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise BuildFailed(f"{spec.key}: torch.onnx.export failed: {type(exc).__name__}: {first}") from None
    seen: list[str] = []
    for w in caught:
        line = f"{w.category.__name__}: {str(w.message).splitlines()[0] if str(w.message) else ''}"
        if line not in seen:
            seen.append(line)
    return seen


def _check(spec: ExportSpec, path: Path) -> dict[str, Any]:
    """onnx.checker, then the declared input/output names and dynamic axes must be there."""
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - ValidationError and friends
        raise BuildFailed(f"{spec.key}: exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from None
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    names_in, names_out = [v.name for v in inputs], [v.name for v in model.graph.output]
    if names_in != [i.name for i in spec.inputs]:
        raise UserError(f"{spec.key}.inputs: exported graph has inputs {names_in}, the spec declares "
                        f"{[i.name for i in spec.inputs]} (the exporter drops inputs the module ignores)")
    if names_out != list(spec.output_names):
        raise BuildFailed(f"{spec.key}.output_names: exported graph has outputs {names_out}")
    found = {v.name: {n: d.dim_param for n, d in enumerate(v.type.tensor_type.shape.dim) if d.dim_param}
             for v in [*inputs, *model.graph.output]}
    for name, axes in spec.dynamic_axes.items():
        if any(found.get(name, {}).get(a) != label for a, label in axes.items()):
            raise BuildFailed(f"{spec.key}.dynamic_axes.{name}: exported dims are {found.get(name)}, "
                              f"declared {axes}")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "inputs": names_in, "outputs": names_out, "node_count": len(model.graph.node),
            "dynamic_axes": {n: {str(a): v for a, v in ax.items()} for n, ax in found.items() if ax}}


def _parity(spec: ExportSpec, path: Path, feeds: dict[str, np.ndarray | None],
            expected: list[Any], run_onnx: OnnxRun) -> dict[str, float | None]:
    """Max |onnx - torch| per output on the example input (None where numpy lacks the dtype)."""
    if any(v is None for v in feeds.values()):
        return {n: None for n in spec.output_names}
    try:
        got = run_onnx(path, feeds)
    except Exception as exc:  # noqa: BLE001 - any runtime's error
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise BuildFailed(f"{spec.key}: exported graph does not run: {type(exc).__name__}: {first}") from None
    diffs: dict[str, float | None] = {}
    for name, ref in zip(spec.output_names, expected):
        want, have = _to_numpy(ref), got.get(name)
        if want is None or have is None:
            diffs[name] = None
            continue
        diffs[name] = float(np.max(np.abs(np.asarray(have, np.float64) - want.astype(np.float64)), initial=0.0))
    return diffs


def _reference_run(path: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(str(path))
    return dict(zip(evaluator.output_names, evaluator.run(None, dict(feeds))))


def _publish(tmpdir: Path, out_path: Path) -> list[str]:
    """fsync then rename every file the exporter wrote (external data first, the graph last)."""
    names = sorted(p.name for p in tmpdir.iterdir() if p.name != out_path.name) + [out_path.name]
    for name in names:
        fd = os.open(tmpdir / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmpdir / name, out_path.parent / name)
    return names


def _flatten(value: Any) -> list[Any]:
    """Module outputs in the exporter's order: a tensor, nested tuples/lists, or dict values."""
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    return [value]


def _to_numpy(tensor: Any) -> np.ndarray | None:
    try:
        return tensor.detach().cpu().numpy()
    except (TypeError, AttributeError):
        return None  # bfloat16 has no numpy dtype
