"""The TensorRT QDQ dialect, checked on the graph (docs/design.md §2).

TensorRT takes explicit quantization only in this form:
- every QuantizeLinear/DequantizeLinear is int8 with a constant zero point of 0 (no uint8);
- scales are constant, finite and positive;
- activations are quantized per-tensor (one scale);
- weights may be quantized per-channel, on the output-channel axis of the layer that reads
  them: Conv 0, ConvTranspose 1, Gemm 0 with transB=1 (else 1), MatMul the last axis;
- no block-wise quantization, and biases stay float (no int32 DequantizeLinear).

Pure onnx + numpy: usable on any graph meant for TensorRT, whoever wrote it.
"""

from __future__ import annotations

from collections import defaultdict

from trtmake.heavy import lazy_import
np = lazy_import("numpy")
onnx = lazy_import("onnx")
numpy_helper = lazy_import("onnx.numpy_helper")

from trtmake.errors import BuildFailed

_QDQ = ("QuantizeLinear", "DequantizeLinear")
_INT8 = 3  # onnx.TensorProto.INT8 (a stable enum value of the ONNX format)


def check_tensorrt_dialect(model: onnx.ModelProto) -> list[str]:
    """Return one message per violation of the TensorRT dialect; empty when the graph is fine."""
    graph = model.graph
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                consts[node.output[0]] = value
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers[name].append((node, index))
    value_types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input)}

    def array(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(consts[name]) if name in consts else None

    def weight_source(node: onnx.NodeProto) -> onnx.TensorProto | None:
        """The constant a Q/DQ quantizes, when it is a weight (directly or through a Q)."""
        source = node.input[0]
        if source in consts:
            return consts[source]
        parent = producer.get(source)
        if node.op_type == "DequantizeLinear" and parent is not None and parent.op_type == "QuantizeLinear":
            return consts.get(parent.input[0])
        return None

    violations: list[str] = []
    for node in graph.node:
        if node.op_type not in _QDQ:
            continue
        where = f"{node.op_type} '{node.name or node.output[0]}'"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.domain not in ("", "ai.onnx"):
            violations.append(f"{where}: domain '{node.domain}'; TensorRT parses only the standard ONNX Q/DQ ops")
        violations += _check_zero_point(node, where, attrs, array, consts, value_types, producer)
        scale = array(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            violations.append(f"{where}: scale '{node.input[1] if len(node.input) > 1 else ''}' is not a constant")
            continue
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            violations.append(f"{where}: scale has non-positive or non-finite values")
        if attrs.get("block_size", 0):
            violations.append(f"{where}: block-wise quantization (block_size={attrs['block_size']}) is not supported")
        if node.op_type == "DequantizeLinear" and _elem_type(node.input[0], consts, value_types) == onnx.TensorProto.INT32:
            violations.append(f"{where}: dequantizes an int32 tensor (a quantized bias); TensorRT takes float biases")
            continue
        if scale.size <= 1:
            continue
        weight = weight_source(node)
        if weight is None:
            violations.append(f"{where}: activation has {scale.size} scales (per-channel); TensorRT needs one scale")
            continue
        rank = len(weight.dims)
        axis = attrs.get("axis", 1)
        axis = axis + rank if axis < 0 else axis
        readers = _readers(node, consumers)
        for reader, index in readers:
            expected = _output_channel_axis(reader, index, rank)
            if expected is None:
                violations.append(
                    f"{where}: per-channel weight '{weight.name}' feeds {reader.op_type} '{reader.name}' input "
                    f"{index}; TensorRT takes per-channel scales only on Conv/ConvTranspose/Gemm/MatMul weights"
                )
            elif axis != expected:
                violations.append(
                    f"{where}: per-channel axis {axis} on weight '{weight.name}' of {reader.op_type} "
                    f"'{reader.name}'; its output-channel axis is {expected}"
                )
    return violations


def assert_tensorrt_dialect(model: onnx.ModelProto, where: str) -> None:
    """Raise BuildFailed with a one-line summary when the graph breaks the TensorRT dialect."""
    violations = check_tensorrt_dialect(model)
    if violations:
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise BuildFailed(f"{where}: not in the TensorRT QDQ dialect: {violations[0]}{more}")


def _check_zero_point(node, where, attrs, array, consts, value_types, producer) -> list[str]:
    if len(node.input) > 2 and node.input[2]:
        zero_point = array(node.input[2])
        if zero_point is None:
            return [f"{where}: zero point '{node.input[2]}' is not a constant"]
        if zero_point.dtype != np.int8:
            return [f"{where}: zero point is {zero_point.dtype}; TensorRT needs int8 with value 0 (symmetric)"]
        if np.any(zero_point != 0):
            return [f"{where}: zero point is not 0 ({zero_point.ravel()[:4].tolist()}); TensorRT needs symmetric"]
        return []
    if node.op_type == "QuantizeLinear":
        if attrs.get("output_dtype", 0) == _INT8:
            return []
        return [f"{where}: no zero point, so it quantizes to uint8; give an int8 zero point of 0"]
    elem = _elem_type(node.input[0], consts, value_types)
    parent = producer.get(node.input[0])
    if elem is None and parent is not None and parent.op_type == "QuantizeLinear":
        return []  # the Q that feeds it is checked on its own
    if elem not in (_INT8, onnx.TensorProto.INT32):
        name = onnx.TensorProto.DataType.Name(elem) if elem else "unknown"
        return [f"{where}: no zero point and input type {name}; TensorRT needs int8 with zero point 0"]
    return []


def _elem_type(name: str, consts: dict, value_types: dict) -> int | None:
    if name in consts:
        return consts[name].data_type
    return value_types.get(name) or None


def _readers(node: onnx.NodeProto, consumers: dict) -> list[tuple[onnx.NodeProto, int]]:
    """The layers that read this weight: through the DQ when `node` is the Q of a Q/DQ pair."""
    direct = consumers.get(node.output[0], [])
    if node.op_type == "DequantizeLinear":
        return direct
    return [r for dq, _ in direct if dq.op_type == "DequantizeLinear" for r in consumers.get(dq.output[0], [])]


def _output_channel_axis(reader: onnx.NodeProto, index: int, rank: int) -> int | None:
    if index != 1:
        return None
    if reader.op_type == "Conv":
        return 0
    if reader.op_type == "ConvTranspose":
        return 1
    if reader.op_type == "Gemm":
        trans_b = next((a.i for a in reader.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if reader.op_type == "MatMul":
        return rank - 1
    return None
