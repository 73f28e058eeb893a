"""The TensorRT dialect places Q/DQ where TensorRT fuses them (residual Adds, classifier, pooling)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from int8_helpers import batches, image_like, run, tiny_cnn
from onnx import TensorProto, helper, numpy_helper

from trtmake.precision.calibration import collect_statistics
from trtmake.precision.int8 import quantize
from trtmake.precision.placement import conv_branch_inputs, matrix_vector_nodes
from trtmake.precision.qdq_check import check_tensorrt_dialect


def residual_block(path, seed: int = 0):
    """stem Conv/Relu -> [Conv/Relu -> Conv] + skip -> Add -> Relu -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)

    def init(name, shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["input", "stem.w", "stem.b"], ["s"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["s"], ["x"], name="stem_relu"),
        helper.make_node("Conv", ["x", "a.w", "a.b"], ["ca"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["ca"], ["ra"], name="relu_a"),
        helper.make_node("Conv", ["ra", "b.w", "b.b"], ["cb"], name="conv_b", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["cb", "x"], ["sum"], name="residual_add"),
        helper.make_node("Relu", ["sum"], ["out"], name="relu_out"),
        helper.make_node("GlobalAveragePool", ["out"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="classifier", transB=1),
    ]
    inits = [init("stem.w", (8, 3, 3, 3)), init("stem.b", (8,), 0.1), init("a.w", (8, 8, 3, 3)),
             init("a.b", (8,), 0.1), init("b.w", (8, 8, 3, 3)), init("b.b", (8,), 0.1),
             init("fc.w", (10, 8), 0.5), init("fc.b", (10,), 0.1)]
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                ["batch", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    return residual_block(tmp_path_factory.mktemp("model") / "residual.onnx")


@pytest.fixture(scope="module")
def stats(block, tmp_path_factory):
    return collect_statistics(block, batches(image_like(32, seed=1), 8), "minmax", num_bins=256,
                              work_dir=tmp_path_factory.mktemp("work"))


def _reads(graph: onnx.GraphProto, name: str) -> list[str]:
    """What each input of node `name` comes from: 'dq' (dequantized), 'float' or 'const'."""
    producer = {o: n for n in graph.node for o in n.output}
    consts = {t.name for t in graph.initializer}
    node = next(n for n in graph.node if n.name == name)
    return ["const" if i in consts else "dq" if producer.get(i) is not None
            and producer[i].op_type == "DequantizeLinear" else "float" for i in node.input]


def test_a_residual_add_quantizes_only_its_skip_input(block, stats, tmp_path):
    quantize(block, stats, "tensorrt", preprocess=False, out_path=tmp_path / "q.onnx")
    graph = onnx.load(tmp_path / "q.onnx").graph
    add = next(n for n in graph.node if n.name == "residual_add")
    assert add.input[0] == "cb"  # the Conv branch: read straight from conv_b, fusable as its epilogue
    assert _reads(graph, "residual_add") == ["float", "dq"]  # the skip input is quantized
    # the skip tensor's one Q/DQ pair is shared with conv_a, which reads the same tensor
    assert _reads(graph, "conv_a")[:2] == ["dq", "dq"] and _reads(graph, "conv_b")[:2] == ["dq", "dq"]
    assert sum(n.op_type == "QuantizeLinear" and n.input[0] == "x" for n in graph.node) == 1
    assert check_tensorrt_dialect(onnx.load(tmp_path / "q.onnx")) == []


def test_the_classifier_gemm_is_float_by_default_and_quantized_when_asked(block, stats, tmp_path):
    default = quantize(block, stats, "tensorrt", preprocess=False, out_path=tmp_path / "default.onnx")
    asked = quantize(block, stats, "tensorrt", preprocess=False, quantize_gemm=True, out_path=tmp_path / "gemm.onnx")
    plain, quantized = onnx.load(tmp_path / "default.onnx"), onnx.load(tmp_path / "gemm.onnx")
    assert _reads(plain.graph, "classifier") == ["float", "const", "const"]
    assert default.nodes["Gemm"] == {"quantized": 0, "float": 1, "removed": 0}
    assert _reads(plain.graph, "gap") == ["float"]  # a pooling layer nothing quantized reads stays float
    assert _reads(quantized.graph, "classifier") == ["dq", "dq", "const"]
    assert asked.nodes["Gemm"]["quantized"] == 1 and _reads(quantized.graph, "gap") == ["dq"]
    for model in (plain, quantized):
        assert check_tensorrt_dialect(model) == []


def test_the_placed_graph_runs_close_to_fp32(block, stats, tmp_path):
    quantize(block, stats, "tensorrt", preprocess=False, out_path=tmp_path / "q.onnx")
    x = image_like(32, seed=9)
    ref, out = run(block, x), run(tmp_path / "q.onnx", x)
    cosine = (ref * out).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1))
    assert cosine.min() > 0.99 and not np.array_equal(ref, out)


def test_conv_branch_is_the_longer_path_when_both_inputs_come_from_convs(tmp_path):
    # tiny_cnn: add2 = relu1 (skip, from conv1) + relu2 (conv2's branch, two nodes further)
    model = onnx.load(tiny_cnn(tmp_path / "tiny.onnx"))
    assert conv_branch_inputs(model) == {"add2": "r2"}
    assert matrix_vector_nodes(model) == ["fc"]


def test_an_add_of_a_bias_or_two_independent_inputs_is_no_residual():
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "bias"], ["b"], name="bias_add"),
        helper.make_node("Relu", ["input"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "r"], ["twice"], name="plain_add"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("twice", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w"),
                               numpy_helper.from_array(np.ones((1,), np.float32), "bias")])
    assert conv_branch_inputs(helper.make_model(graph)) == {}
