"""Small ONNX graphs for the TensorRT backend tests, written with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path, opset: int = 17) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def conv_relu(path: Path, batch: int | str = "N", name: str = "input") -> Path:
    """input [batch,3,8,8] -> Conv(4) -> Relu -> GlobalAveragePool -> Flatten -> logits [batch,4]."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", [name, "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="pool"),
             helper.make_node("Flatten", ["g"], ["logits"], name="flatten")]
    graph = helper.make_graph(nodes, "conv_relu",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 4])], [w, b])
    return _save(graph, path)


def nonzero(path: Path) -> Path:
    """x [N] -> NonZero -> idx [1, ?]: an output whose shape only the data decides."""
    graph = helper.make_graph([helper.make_node("NonZero", ["x"], ["idx"], name="nz")], "nonzero",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
                              [helper.make_tensor_value_info("idx", TensorProto.INT64, [1, "K"])])
    return _save(graph, path)


def two_inputs(path: Path) -> Path:
    """ids int64 [B,S] and mask float [B,S] -> Cast(ids) * mask -> y [B,S]."""
    nodes = [helper.make_node("Cast", ["ids"], ["f"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "mask"], ["y"], name="mul")]
    graph = helper.make_graph(nodes, "two_inputs",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "S"]),
                               helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "S"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "S"])])
    return _save(graph, path)


def onnxruntime_outputs(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))
