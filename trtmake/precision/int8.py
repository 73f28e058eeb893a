"""INT8 by explicit quantization: write a QDQ ONNX graph from calibration statistics.

The dialect follows the backend (docs/design.md §2):
- "tensorrt": symmetric int8 everywhere (zero points 0), weights per-channel on the
  output-channel axis as float weight + Q + DQ, activations per-tensor, biases left in float,
  one Q/DQ pair per tensor shared by its readers (what TensorRT's Model Optimizer asks
  onnxruntime for), placed where TensorRT fuses it (`placement`: compute layers, only the skip
  input of a residual Add, matrix-vector products in float unless `quantize_gemm`). Checked
  by `qdq_check` before it is returned.
- "onnxruntime": asymmetric uint8 activations, symmetric int8 weights (per-channel): the form
  onnxruntime's CPU kernels fuse into QLinearConv / QLinearMatMul.

Ranges come from `CalibrationStats` through onnxruntime's calibration cache, so quantize_static
never runs the model. onnxruntime is imported inside the functions that need it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from trtmake.heavy import lazy_import
np = lazy_import("numpy")
onnx = lazy_import("onnx")

from trtmake.errors import BuildFailed, UserError
from trtmake.precision.calibration import CalibrationStats, check_method, copy_model, prepare_model, quiet
from trtmake.precision.placement import (
    LINEAR, POOLING, conv_branch_inputs, drop_input_qdq, matrix_vector_nodes, unread_pooling_nodes,
)
from trtmake.precision.qdq_check import assert_tensorrt_dialect

DIALECTS = ("tensorrt", "onnxruntime")
WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")
FUSED_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh")
# Inputs of these get Q/DQ in the TensorRT dialect (as `placement` refines it); TensorRT
# propagates int8 through the rest.
TENSORRT_OP_TYPES = (*LINEAR, "Add", *POOLING)


@dataclass(frozen=True)
class QuantizeSummary:
    """What quantization did, for the report: per op type, how many nodes run in int8."""

    dialect: str
    method: str
    nodes: dict[str, dict[str, int]]  # op type -> {"quantized", "float", "removed"}
    quantized_nodes: int
    float_nodes: int
    activations_quantized: int  # distinct activation tensors behind a QuantizeLinear
    weights_quantized: int  # distinct weight initializers behind a DequantizeLinear
    excluded: tuple[str, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def check_dialect(dialect: str, key: str = "precision.dialect") -> str:
    if dialect not in DIALECTS:
        raise UserError(f"{key}: unknown QDQ dialect '{dialect}'; choose one of {list(DIALECTS)}")
    return dialect


def default_op_types(dialect: str) -> tuple[str, ...] | None:
    """Op types whose nodes get quantized; None means every op type onnxruntime can quantize."""
    return TENSORRT_OP_TYPES if check_dialect(dialect) == "tensorrt" else None


def quantizable_nodes(model: onnx.ModelProto, op_types: Sequence[str] = WEIGHTED_OP_TYPES) -> list[str]:
    """Names of the nodes of `op_types`, in graph order: the candidates of auto_exclude."""
    return [n.name for n in model.graph.node if n.op_type in op_types and n.name]


def resolve_excluded(
    model: onnx.ModelProto, exclude_nodes: Iterable[str] = (), exclude_op_types: Iterable[str] = (),
) -> tuple[str, ...]:
    """Node names to leave in float: the listed nodes plus every node of the listed op types.

    A layer is its weighted node plus the activation fused into it: leaving a Conv/Gemm/MatMul in
    float also leaves the Relu/Clip/... that alone reads its output in float (else the
    onnxruntime dialect would still quantize that activation's output in the middle of the
    float layer)."""
    names = [n.name for n in model.graph.node]
    known = set(names)
    for name in exclude_nodes:
        if name not in known:
            close = [n for n in names if name.lower() in n.lower()][:5] or names[:5]
            raise UserError(
                f"precision.exclude_nodes: '{name}' is not a node of the model (after quantization pre-processing, "
                f"which folds Pad/BatchNormalization into Conv); nodes look like {close}"
            )
    op_types = set(exclude_op_types)
    for op in sorted(op_types):
        if not onnx.defs.has(op):
            raise UserError(f"precision.exclude_op_types: '{op}' is not an ONNX operator (op types are case-sensitive)")
    wanted = {n.name for n in model.graph.node if n.name in set(exclude_nodes) or n.op_type in op_types}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for node in model.graph.node:
        if node.name in wanted and node.op_type in WEIGHTED_OP_TYPES:
            following = readers.get(node.output[0], [])
            if len(following) == 1 and following[0].op_type in FUSED_ACTIVATIONS and following[0].name:
                wanted.add(following[0].name)
    return tuple(n.name for n in model.graph.node if n.name in wanted)


def quantize(
    model_path: Path,
    stats: CalibrationStats,
    dialect: str,
    *,
    method: str | None = None,
    exclude_nodes: Iterable[str] = (),
    exclude_op_types: Iterable[str] = (),
    per_channel: bool = True,
    op_types: Sequence[str] | None = None,
    percentile: float | None = None,
    preprocess: bool | None = None,
    quantize_gemm: bool = False,
    weight_type: str = "int8",
    out_path: Path,
) -> QuantizeSummary:
    """Write the QDQ graph of `model_path` for `dialect` to `out_path` and summarize it.

    `method` picks how ranges are derived from `stats` (default: the method it was collected
    for); `op_types` overrides the dialect's op types to quantize. `preprocess` (default: as
    the statistics were collected) first puts the graph through `prepare_model`; pass False
    with a model that `prepare_model` already wrote. `quantize_gemm` (TensorRT dialect) also
    quantizes matrix-vector Gemm/MatMul layers (e.g. the classifier), float by default.
    """
    check_dialect(dialect)
    method = check_method(method or stats.method)
    model_path, out_path = Path(model_path), Path(out_path)
    preprocess = stats.preprocessed if preprocess is None else preprocess
    with tempfile.TemporaryDirectory(prefix="trtmake-int8-") as tmp:
        # onnxruntime writes "<model>-inferred.onnx" next to its input: always hand it a private copy
        private = Path(tmp) / "model" / model_path.name
        model_path = prepare_model(model_path, private) if preprocess else copy_model(model_path, private)
        try:
            return _quantize(model_path, stats, dialect, method, exclude_nodes, exclude_op_types, per_channel,
                             op_types, percentile, quantize_gemm, weight_type, out_path, Path(tmp))
        except BaseException:
            out_path.unlink(missing_ok=True)  # never leave a partial or rejected graph behind
            raise


def _quantize(model_path: Path, stats: CalibrationStats, dialect: str, method: str, exclude_nodes: Iterable[str],
              exclude_op_types: Iterable[str], per_channel: bool, op_types: Sequence[str] | None,
              percentile: float | None, quantize_gemm: bool, weight_type: str, out_path: Path,
              tmp: Path) -> QuantizeSummary:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    source = onnx.load(str(model_path), load_external_data=False)
    excluded = resolve_excluded(source, exclude_nodes, exclude_op_types)
    op_types = tuple(op_types) if op_types is not None else default_op_types(dialect)
    _check_coverage(source, stats, model_path.name)
    float_inputs: dict[str, str] = {}
    placed: tuple[str, ...] = ()  # left in float by the TensorRT placement, not by the user
    if dialect == "tensorrt":
        placed, float_inputs = _tensorrt_placement(source, excluded, op_types, quantize_gemm)

    ranges = stats.ranges_for(method, percentile=percentile)
    calibrate_method = {"entropy": CalibrationMethod.Entropy, "minmax": CalibrationMethod.MinMax,
                        "percentile": CalibrationMethod.Percentile}[method]
    tensors = TensorsData(calibrate_method, {
        name: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
        for name, (lo, hi) in ranges.items()
    })
    if dialect == "tensorrt":
        kind, options = QuantType.QInt8, {
            "ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
            "AddQDQPairToWeight": True, "DedicatedQDQPair": False, "ForceQuantizeNoInputCheck": True,
            "OpTypesToExcludeOutputQuantization": sorted({n.op_type for n in source.graph.node}),
            "QDQOpTypePerChannelSupportToAxis": {"Conv": 0, "ConvTranspose": 1},
        }
    else:
        kind, options = QuantType.QUInt8, {"ActivationSymmetric": False, "WeightSymmetric": True}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cache = tmp / "ranges.json"
    save_tensors_data(tensors, cache)
    try:
        with quiet():
            quantize_static(
                str(model_path), str(out_path), None, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(op_types) if op_types else None, per_channel=per_channel,
                activation_type=kind, nodes_to_exclude=[*excluded, *placed],
                weight_type=QuantType.QUInt8 if weight_type == "uint8" and dialect != "tensorrt" else QuantType.QInt8,
                calibrate_method=calibrate_method, calibration_cache_path=str(cache),
                use_external_data_format=_has_external_data(source), extra_options=options,
            )
    except Exception as exc:  # onnxruntime.quantization raises bare ValueError/RuntimeError/...
        raise BuildFailed(f"int8: quantizing {model_path.name} for {dialect} failed: {exc}") from exc
    quantized = onnx.load(str(out_path), load_external_data=False)
    if keep_outputs_float(quantized) + drop_input_qdq(quantized, float_inputs):
        onnx.save(quantized, str(out_path))
    if dialect == "tensorrt":
        assert_tensorrt_dialect(quantized, f"int8 graph of {model_path.name}")
    return summarize(source, quantized, dialect, method, excluded, op_types or _registry_op_types(), set(stats.tensors))


def _tensorrt_placement(source: onnx.ModelProto, excluded: Sequence[str], op_types: Sequence[str],
                        quantize_gemm: bool) -> tuple[tuple[str, ...], dict[str, str]]:
    """Nodes the TensorRT placement leaves in float (matrix-vector products unless asked, pooling
    no quantized layer reads), and the Conv-branch input of each residual Add (name -> tensor)."""
    placed = [] if quantize_gemm else matrix_vector_nodes(source)
    skip = set(excluded) | set(placed)
    quantized = [n.name for n in source.graph.node if n.op_type in op_types and n.name not in skip]
    placed += unread_pooling_nodes(source, quantized)
    branches = {add: tensor for add, tensor in conv_branch_inputs(source).items() if add not in skip}
    return tuple(placed), branches


def _registry_op_types() -> tuple[str, ...]:
    """What quantize_static quantizes when given no op types (its own default)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return tuple(sorted(set(QDQRegistry) | set(QLinearOpsRegistry)))


def keep_outputs_float(model: onnx.ModelProto) -> int:
    """Drop the Q/DQ pair onnxruntime puts on graph outputs (uint8 logits can flip the top-1
    between close classes). The producer then fuses without an output Q (e.g. QGemm with float
    output). Edits `model` in place; returns how many outputs it freed."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    freed = 0
    for output in graph.output:
        dq = producer.get(output.name)
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        source = producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
        if source is None or readers.get(q.output[0]) != 1 or readers.get(q.input[0]) != 1:
            continue
        source.output[list(source.output).index(q.input[0])] = output.name
        graph.node.remove(q)
        graph.node.remove(dq)
        freed += 1
    if freed:
        used = {name for node in graph.node for name in node.input}
        for init in [t for t in graph.initializer if t.name not in used]:
            graph.initializer.remove(init)
    return freed


def _has_external_data(model: onnx.ModelProto) -> bool:
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def _check_coverage(model: onnx.ModelProto, stats: CalibrationStats, model_name: str) -> None:
    """Statistics from another model (or an edited one) would silently leave tensors in float."""
    constants = {t.name for t in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    floats = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    needed = [name for name in floats if name not in constants]
    needed += [n.output[0] for n in model.graph.node if n.op_type in WEIGHTED_OP_TYPES]
    missing = [name for name in needed if name not in stats.tensors]
    if missing or not stats.tensors:
        raise UserError(
            f"calibration statistics do not describe {model_name} (no range for {missing[:3] or 'any tensor'}); "
            "they come from another model: recalibrate"
        )


def summarize(
    source: onnx.ModelProto, quantized: onnx.ModelProto, dialect: str, method: str,
    excluded: Sequence[str], op_types: Sequence[str], calibrated: set[str],
) -> QuantizeSummary:
    """Count, per op type, the source nodes that read dequantized inputs ("quantized"), that
    quantization folded away ("removed": Relu/Clip under asymmetric activations) or that stay
    "float". Only nodes of `op_types` reading a calibrated (float) tensor are counted."""
    graph = quantized.graph
    producer = {o: n for n in graph.node for o in n.output}
    by_name = {n.name: n for n in graph.node if n.name}
    initializers = {t.name for t in graph.initializer}
    skip = set(excluded)

    def reads_int8(node: onnx.NodeProto) -> bool:
        if node.name in skip:
            return False
        dq = [producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in node.input]
        if node.op_type in WEIGHTED_OP_TYPES and len(dq) > 1:
            return dq[1]
        return any(dq)

    counts: dict[str, Counter] = {}
    eligible = set(op_types)
    for node in source.graph.node:
        if node.op_type not in eligible or not any(i in calibrated for i in node.input):
            continue
        twin = by_name.get(node.name) if node.name else None
        state = "removed" if node.name and twin is None else ("quantized" if twin and reads_int8(twin) else "float")
        counts.setdefault(node.op_type, Counter())[state] += 1
    nodes = {op: {k: int(c[k]) for k in ("quantized", "float", "removed")} for op, c in sorted(counts.items())}
    activations, weights = set(), set()
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            (weights if node.input[0] in initializers else activations).add(node.input[0])
        elif node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            weights.add(node.input[0])
    weights -= {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT32}  # biases
    return QuantizeSummary(
        dialect=dialect, method=method, nodes=nodes,
        quantized_nodes=sum(c["quantized"] for c in nodes.values()),
        float_nodes=sum(c["float"] for c in nodes.values()),
        activations_quantized=len(activations), weights_quantized=len(weights), excluded=tuple(excluded),
    )
