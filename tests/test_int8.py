"""QDQ graphs per dialect from one set of calibration statistics."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from int8_helpers import batches, image_like, run, tiny_cnn
from onnx import numpy_helper

from trtmake.errors import UserError
from trtmake.precision.calibration import collect_statistics
from trtmake.precision.int8 import quantizable_nodes, quantize
from trtmake.precision.qdq_check import check_tensorrt_dialect


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_cnn(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def stats(model, tmp_path_factory):
    return collect_statistics(model, batches(image_like(64, seed=1), 16), "entropy", num_bins=256,
                              work_dir=tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def held_out():
    return image_like(64, seed=7)


def _dq_producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}


def _node(graph: onnx.GraphProto, name: str) -> onnx.NodeProto:
    return next(n for n in graph.node if n.name == name)


def _consts(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def test_tensorrt_dialect_passes_the_checker_and_onnxruntime_dialect_does_not(model, stats, tmp_path):
    quantize(model, stats, "tensorrt", out_path=tmp_path / "trt.onnx")
    quantize(model, stats, "onnxruntime", out_path=tmp_path / "ort.onnx")
    assert check_tensorrt_dialect(onnx.load(tmp_path / "trt.onnx")) == []
    violations = check_tensorrt_dialect(onnx.load(tmp_path / "ort.onnx"))
    assert violations and any("zero point is uint8" in v for v in violations)


@pytest.mark.parametrize("dialect", ["tensorrt", "onnxruntime"])
@pytest.mark.parametrize("method", ["entropy", "minmax", "percentile"])
def test_quantized_model_runs_close_to_fp32(model, stats, held_out, tmp_path, dialect, method):
    quantize(model, stats, dialect, method=method, out_path=tmp_path / "q.onnx")
    ref, out = run(model, held_out), run(tmp_path / "q.onnx", held_out)
    cosine = (ref * out).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1))
    assert cosine.min() > 0.99
    assert (ref.argmax(1) == out.argmax(1)).mean() >= 0.9
    assert not np.array_equal(ref, out)  # it did quantize


def test_tensorrt_dialect_shape(model, stats, tmp_path):
    summary = quantize(model, stats, "tensorrt", out_path=tmp_path / "q.onnx")
    graph = onnx.load(tmp_path / "q.onnx").graph
    consts, dq = _consts(graph), _dq_producers(graph)
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            assert consts[node.input[2]].dtype == np.int8 and not consts[node.input[2]].any()
    conv3_weight = dq[_node(graph, "conv3").input[1]]
    assert consts[conv3_weight.input[1]].shape == (16,)  # one scale per output channel
    assert {a.name: a.i for a in conv3_weight.attribute}.get("axis", 1) == 0
    assert _node(graph, "conv3").input[2] == "conv3.b"  # bias stays float
    assert "logits" in {o.name for o in graph.output} and "logits" not in dq  # output not quantized
    assert summary.nodes["Conv"] == {"quantized": 3, "float": 0, "removed": 0}
    # the classifier (a matrix-vector Gemm) stays float in the TensorRT placement by default
    assert summary.nodes["Gemm"] == {"quantized": 0, "float": 1, "removed": 0} and summary.weights_quantized == 3
    assert summary.dialect == "tensorrt" and summary.method == "entropy"


def test_onnxruntime_dialect_uses_uint8_activations_and_int8_weights(model, stats, tmp_path):
    quantize(model, stats, "onnxruntime", out_path=tmp_path / "q.onnx")
    graph = onnx.load(tmp_path / "q.onnx").graph
    consts, dq = _consts(graph), _dq_producers(graph)
    conv2 = _node(graph, "conv2")
    assert consts[dq[conv2.input[0]].input[2]].dtype == np.uint8
    assert consts[dq[conv2.input[1]].input[2]].dtype == np.int8
    assert not consts[dq[conv2.input[1]].input[2]].any()


def test_method_changes_the_activation_scales(model, stats, tmp_path):
    scales = {}
    for method in ("entropy", "minmax"):
        quantize(model, stats, "tensorrt", method=method, out_path=tmp_path / f"{method}.onnx")
        graph = onnx.load(tmp_path / f"{method}.onnx").graph
        q = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "a2")
        scales[method] = float(_consts(graph)[q.input[1]])
    assert scales["entropy"] < scales["minmax"]


def test_excluded_nodes_stay_float(model, stats, held_out, tmp_path):
    summary = quantize(model, stats, "tensorrt", exclude_nodes=["conv2"], exclude_op_types=["Gemm"],
                       out_path=tmp_path / "q.onnx")
    graph = onnx.load(tmp_path / "q.onnx").graph
    dq = _dq_producers(graph)
    assert _node(graph, "conv2").input[1:] == ["conv2.w", "conv2.b"]  # float weights, as in the source
    assert _node(graph, "fc").input == ["flat", "fc.w", "fc.b"]  # nothing quantized around it
    assert _node(graph, "conv1").input[1] in dq
    assert summary.excluded == ("conv2", "relu2", "fc")  # a layer's activation stays with it
    assert summary.nodes["Conv"] == {"quantized": 2, "float": 1, "removed": 0}
    assert summary.nodes["Gemm"] == {"quantized": 0, "float": 1, "removed": 0}
    assert check_tensorrt_dialect(onnx.load(tmp_path / "q.onnx")) == []
    assert run(tmp_path / "q.onnx", held_out).shape == (64, 10)


def test_excluded_layers_stay_float_with_their_activation_in_the_onnxruntime_dialect(model, stats, tmp_path):
    summary = quantize(model, stats, "onnxruntime", exclude_nodes=["conv3"], out_path=tmp_path / "q.onnx")
    graph = onnx.load(tmp_path / "q.onnx").graph
    assert _node(graph, "conv3").input[1] == "conv3.w"
    assert _node(graph, "conv3").output == _node(graph, "relu3").input  # no Q/DQ inside the float layer
    assert summary.excluded == ("conv3", "relu3")
    assert summary.nodes["Conv"]["float"] == 1 and summary.nodes["Conv"]["quantized"] == 2
    assert summary.nodes["Relu"] == {"quantized": 0, "float": 1, "removed": 2}


def test_graph_outputs_stay_float_in_the_onnxruntime_dialect(model, stats, tmp_path):
    quantize(model, stats, "onnxruntime", out_path=tmp_path / "q.onnx")
    graph = onnx.load(tmp_path / "q.onnx").graph
    assert _node(graph, "fc").output == ["logits"]  # no uint8 Q/DQ on the logits
    assert "logits_scale" not in {t.name for t in graph.initializer}


def test_per_tensor_weights_when_per_channel_is_off(model, stats, tmp_path):
    quantize(model, stats, "tensorrt", per_channel=False, out_path=tmp_path / "q.onnx")
    graph = onnx.load(tmp_path / "q.onnx").graph
    weight_dq = _dq_producers(graph)[_node(graph, "conv1").input[1]]
    assert _consts(graph)[weight_dq.input[1]].size == 1


def test_unknown_node_or_op_type_is_a_user_error(model, stats, tmp_path):
    with pytest.raises(UserError, match="precision.exclude_nodes: 'conv9' is not a node"):
        quantize(model, stats, "tensorrt", exclude_nodes=["conv9"], out_path=tmp_path / "q.onnx")
    with pytest.raises(UserError, match="precision.exclude_op_types: 'conv' is not an ONNX operator"):
        quantize(model, stats, "tensorrt", exclude_op_types=["conv"], out_path=tmp_path / "q.onnx")
    with pytest.raises(UserError, match="unknown QDQ dialect 'tensorrt10'"):
        quantize(model, stats, "tensorrt10", out_path=tmp_path / "q.onnx")


def test_stats_of_another_model_are_a_user_error(stats, tmp_path):
    other = tiny_cnn(tmp_path / "other.onnx")
    renamed = onnx.load(other)
    renamed.graph.node[0].output[0] = "stem"
    renamed.graph.node[1].input[0] = "stem"
    onnx.save(renamed, other)
    with pytest.raises(UserError, match="do not describe other.onnx .*recalibrate"):
        quantize(other, stats, "tensorrt", out_path=tmp_path / "q.onnx")


def test_quantizable_nodes_are_the_weighted_layers(model):
    assert quantizable_nodes(onnx.load(model)) == ["conv1", "conv2", "conv3", "fc"]


def test_nothing_is_written_next_to_the_input_model(model, stats, tmp_path):
    before = sorted(model.parent.iterdir())
    quantize(model, stats, "tensorrt", preprocess=False, out_path=tmp_path / "a.onnx")
    quantize(model, stats, "onnxruntime", out_path=tmp_path / "b.onnx")
    collect_statistics(model, batches(image_like(8, seed=3), 8), "minmax", num_bins=128, preprocess=False,
                       work_dir=tmp_path / "w")
    assert sorted(model.parent.iterdir()) == before


def test_the_int8_modules_import_without_onnxruntime_or_scikit_image():
    import subprocess
    import sys

    code = ("import sys; sys.modules['onnxruntime'] = None; sys.modules['skimage'] = None\n"
            "import trtmake.precision.calibration, trtmake.precision.stats, trtmake.precision.int8\n"
            "import trtmake.precision.qdq_check, trtmake.precision.sensitivity, trtmake.image_dataset\n")
    subprocess.run([sys.executable, "-c", code], check=True)
