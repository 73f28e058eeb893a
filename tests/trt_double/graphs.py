"""Small ONNX graphs for the backend tests, built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path, domains: tuple[str, ...] = ()) -> Path:
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def conv_relu(path: Path, dtype: int = TensorProto.FLOAT, batch: int | str = "N") -> Path:
    """x[N,3,8,8] -> Conv(4 filters) -> Relu -> y. fp16 graphs have fp16 I/O and weights."""
    npt = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), npt) * 0.1, "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu0")]
    graph = helper.make_graph(nodes, "conv_relu",
                              [helper.make_tensor_value_info("x", dtype, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", dtype, [batch, 4, 8, 8])], [w])
    return _save(graph, path)


def qdq_conv(path: Path) -> Path:
    """Int8 QDQ graph in TensorRT's dialect: symmetric int8, per-channel weights on axis 0."""
    inits = [
        numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32) * 0.1, "w"),
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "x_zero"),
        numpy_helper.from_array(np.full((4,), 0.001, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros((4,), np.int8), "w_zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"], name="x_q"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xdq"], name="x_dq"),
        helper.make_node("QuantizeLinear", ["w", "w_scale", "w_zero"], ["wq"], name="w_q", axis=0),
        helper.make_node("DequantizeLinear", ["wq", "w_scale", "w_zero"], ["wdq"], name="w_dq", axis=0),
        helper.make_node("Conv", ["xdq", "wdq"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu0"),
    ]
    graph = helper.make_graph(nodes, "qdq_conv",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], inits)
    return _save(graph, path)


def two_inputs_with_custom_ops(path: Path) -> Path:
    """a, b -> Add -> MyPlugin -> Mul -> OtherPlugin -> y (two ops TensorRT has no importer for)."""
    nodes = [helper.make_node("Add", ["a", "b"], ["s"], name="add0"),
             helper.make_node("MyPlugin", ["s"], ["p"], name="plugin_a", domain="com.example"),
             helper.make_node("Mul", ["p", "p"], ["m"], name="mul0"),
             helper.make_node("OtherPlugin", ["m"], ["y"], name="plugin_b", domain="com.example")]
    graph = helper.make_graph(nodes, "custom",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 16]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])])
    return _save(graph, path, domains=("com.example",))


def scale(path: Path) -> Path:
    """x[N,4] -> Mul(2) -> y[N,4]: what the double's "double" execution rule computes."""
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"], name="mul0")], "scale",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [two])
    return _save(graph, path)


def add_two(path: Path) -> Path:
    """a[N,S], b[N,S] -> Add -> y: two dynamic inputs for profile tests."""
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"], name="add0")], "add_two",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", "S"]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", "S"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "S"])])
    return _save(graph, path)


def tiny_cnn(path: Path, batch: int | str = "N") -> Path:
    """x[N,3,16,16] -> Conv+bias -> Relu -> Conv+bias -> Add(residual) -> Relu -> GlobalAveragePool
    -> Flatten -> Gemm -> y[N,10]; seeded random weights (numbers worth comparing)."""
    rng = np.random.default_rng(0)
    f = np.float32
    inits = [numpy_helper.from_array(rng.normal(0, 0.2, (8, 3, 3, 3)).astype(f), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(f), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.2, (8, 8, 3, 3)).astype(f), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(f), "b2"),
             numpy_helper.from_array(rng.normal(0, 0.3, (10, 8)).astype(f), "wf"),
             numpy_helper.from_array(rng.normal(0, 0.1, (10,)).astype(f), "bf")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["s"], name="add_residual"),
             helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["fl"], name="flatten"),
             helper.make_node("Gemm", ["fl", "wf", "bf"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "tiny_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], inits)
    return _save(graph, path)


def nonzero(path: Path) -> Path:
    """x[N,4] -> Greater(0) -> NonZero -> y[2,K]: an output whose shape depends on the data."""
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    nodes = [helper.make_node("Greater", ["x", "zero"], ["m"], name="positive"),
             helper.make_node("NonZero", ["m"], ["y"], name="nonzero")]
    graph = helper.make_graph(nodes, "nonzero", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [2, "K"])], [zero])
    return _save(graph, path)


def fp16_cast_conv(path: Path) -> Path:
    """x fp32 -> Cast(fp16) -> Conv(fp16 weights) -> Relu -> Cast(fp32) -> y: fp16 compute inside."""
    w = numpy_helper.from_array((np.ones((4, 3, 3, 3)) * 0.1).astype(np.float16), "w")
    nodes = [helper.make_node("Cast", ["x"], ["xh"], name="to_half", to=TensorProto.FLOAT16),
             helper.make_node("Conv", ["xh", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu0"),
             helper.make_node("Cast", ["r"], ["y"], name="to_float", to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "fp16_cast_conv",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], [w])
    return _save(graph, path)
