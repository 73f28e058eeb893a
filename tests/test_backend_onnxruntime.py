"""The onnxruntime engine is the optimized graph, loaded with optimization off;
fp16 keeps I/O types; the report carries layer counts before -> after."""

import onnx
import onnxruntime as ort

from trtmake.backends.onnxruntime import OnnxruntimeBackend


def test_engine_is_optimized_graph_with_fewer_nodes(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    t = trtmake.report["targets"][0]
    info = t["layer_info"]
    assert info["layers_after"] < info["layers_before"]
    engine = onnx.load(t["engine"]["path"])
    assert len(engine.graph.node) == info["layers_after"]
    assert not any(n.op_type == "BatchNormalization" for n in engine.graph.node)  # fused into Conv
    assert info["layers_before"] == len(onnx.load(t["graph"]["path"]).graph.node)  # the graph built from


def test_layer_count_before_is_the_precision_graphs_for_fp16_too(trtmake):
    assert trtmake("target=tiny_cnn_fp16") == 0
    t = trtmake.report["targets"][0]
    assert t["layer_info"]["layers_before"] == len(onnx.load(t["graph"]["path"]).graph.node)  # casts included


def test_fp16_graph_keeps_io_types_and_converts_weights(trtmake):
    assert trtmake("target=tiny_cnn_fp16") == 0
    t = trtmake.report["targets"][0]
    graph = onnx.load(t["graph"]["path"])  # the precision stage's output, which the backend builds
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.graph.initializer)
    assert t["metrics"]["cosine_similarity"] > 0.999
    assert t["precision"]["mode"] == "fp16"


def test_isa_is_in_fingerprint_only_at_level_all():
    b = OnnxruntimeBackend()
    assert b.fingerprint(b.parse_options({"graph_optimization_level": "extended"}))["isa"] == "portable"
    assert b.fingerprint(b.parse_options({"graph_optimization_level": "all"}))["isa"] != "portable"
    assert b.fingerprint(b.parse_options({}))["onnxruntime"] == ort.__version__


def test_engine_digest_is_verified_and_corrupt_engine_is_rebuilt(trtmake):
    from pathlib import Path

    assert trtmake("target=tiny_cnn_fp32") == 0
    engine = Path(trtmake.report["targets"][0]["engine"]["path"])
    engine.chmod(0o644)
    data = bytearray(engine.read_bytes())
    data[len(data) // 2] ^= 0xFF
    engine.write_bytes(bytes(data))
    assert trtmake("target=tiny_cnn_fp32", "revalidate=true") == 0
    t = trtmake.report["targets"][0]
    assert {s["name"]: s["status"] for s in t["stages"]}["build"] == "built"
    assert any("corrupt" in w for w in t["warnings"])
