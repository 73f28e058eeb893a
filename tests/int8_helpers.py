"""Tiny seeded models and data for the INT8 tests (built with onnx.helper, run in milliseconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 10


def tiny_cnn(path: Path, seed: int = 0, opset: int = 17) -> Path:
    """input [N,3,16,16] -> Conv/Relu -> Conv/Relu (+ residual Add) -> Conv/Relu -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)

    def init(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        init("conv1.w", (8, 3, 3, 3), 0.4), init("conv1.b", (8,), 0.1),
        init("conv2.w", (8, 8, 3, 3), 0.2), init("conv2.b", (8,), 0.1),
        init("conv3.w", (16, 8, 3, 3), 0.2), init("conv3.b", (16,), 0.1),
        init("fc.w", (CLASSES, 16), 0.5), init("fc.b", (CLASSES,), 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2.w", "conv2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r1", "r2"], ["a2"], name="add2"),
        helper.make_node("Conv", ["a2", "conv3.w", "conv3.b"], ["c3"], name="conv3", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def image_like(n: int, seed: int) -> np.ndarray:
    """Smooth, image-like inputs [n,3,16,16] in about [-1, 1] (low-frequency noise, not white)."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((n, 3, 4, 4)).astype(np.float32)
    return np.clip(np.kron(coarse, np.ones((1, 1, 4, 4), np.float32)) * 0.5
                   + 0.1 * rng.standard_normal((n, 3, 16, 16)).astype(np.float32), -1, 1).astype(np.float32)


def batches(x: np.ndarray, batch: int):
    for i in range(0, len(x), batch):
        yield {"input": x[i:i + batch]}


def run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]
