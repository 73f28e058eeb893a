"""Engine inspector JSON -> layer info, on inspector output in the shapes TensorRT writes."""

from __future__ import annotations

import json

import pytest

from trt_double import graphs, install
from trtmake.backends.tensorrt.layers import count_onnx_nodes, layer_info, precision_of


@pytest.mark.parametrize("fmt, precision", [
    ("Row major linear FP32", "fp32"),
    ("Float", "fp32"),
    ("Row major linear FP16 format", "fp16"),
    ("Half", "fp16"),
    ("Thirty-two wide channel vectorized row major Int8 format.", "int8"),
    ("Row major linear UInt8", "uint8"),
    ("Row major linear BF16 format", "bf16"),
    ("BFloat16", "bf16"),
    ("Row major linear Int32", "int32"),
    ("N/A due to dynamic shapes", None),
])
def test_precision_words(fmt, precision):
    assert precision_of(fmt) == precision


def test_detailed_inspector_json_gives_counts_and_precisions():
    raw = {"Layers": [
        {"Name": "conv1 + relu1", "LayerType": "CaskConvolution",
         "Outputs": [{"Name": "a", "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format."}]},
        {"Name": "Reformatting CopyNode for Output Tensor 0", "LayerType": "Reformat",
         "Outputs": [{"Name": "y", "Format/Datatype": "Row major linear FP32"}]},
        {"Name": "shape_op", "LayerType": "NoOp",
         "Outputs": [{"Name": "s", "Format/Datatype": "N/A due to dynamic shapes"}]},
    ], "Bindings": ["x", "y"]}
    info = layer_info(json.dumps(raw), layers_before=7)
    assert info["layers_before"] == 7 and info["layers_after"] == 3
    assert [layer["precision"] for layer in info["layers"]] == ["int8", "fp32", None]
    assert info["precisions"] == {"fp32": 1, "int8": 1, "unknown": 1}
    assert info["inspector"] == raw


def test_layer_with_outputs_of_two_precisions():
    raw = {"Layers": [{"Name": "split", "LayerType": "Slice", "Outputs": [
        {"Format/Datatype": "Half"}, {"Format/Datatype": "Float"}]}]}
    assert layer_info(json.dumps(raw), 1)["layers"][0]["precision"] == "fp16+fp32"


def test_names_only_inspector_still_counts_layers():
    info = layer_info(json.dumps({"Layers": ["conv1 + relu1", "fc"], "Bindings": ["x", "y"]}), 4)
    assert info["layers_after"] == 2 and info["layers"][0] == {"name": "conv1 + relu1", "type": None, "precision": None}


def test_unparseable_inspector_output_is_kept_verbatim():
    info = layer_info("not json", 3)
    assert info["layers_after"] == 0 and info["inspector"] == "not json"


def test_onnx_nodes_counted_without_loading_external_data(tmp_path):
    assert count_onnx_nodes(graphs.qdq_conv(tmp_path / "q.onnx")) == 6
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    assert count_onnx_nodes(tmp_path / "bad.onnx") is None


# -- the 11.x schema and quantized layers ------------------------------------------------------------------
def test_eleven_schema_splits_format_and_datatype():
    raw = {"Layers": [
        {"Name": "conv1 + relu1", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": "x", "Format": "Row major linear", "Datatype": "FP16"}],
         "Outputs": [{"Name": "a", "Format": "Row major linear", "Datatype": "FP16"}]},
        {"Name": "fc", "LayerType": "CaskGemmMatrixMultiply",
         "Inputs": [{"Name": "a", "Format": "Row major linear", "Datatype": "FP16"}],
         "Outputs": [{"Name": "y", "Format": "Row major linear", "Datatype": "FP32"}]},
    ], "I/O Tensors": [{"Name": "x", "IOMode": "Input", "DataType": "FP16"},
                       {"Name": "y", "IOMode": "Output", "DataType": "FP32"}]}
    info = layer_info(json.dumps(raw), 3)
    assert [layer["precision"] for layer in info["layers"]] == ["fp16", "fp32"]
    assert info["io_tensors"] == ["x", "y"] and info["precisions"] == {"fp16": 1, "fp32": 1}


@pytest.mark.parametrize("inputs, outputs, precision", [
    (["Int8"], ["FP32"], "int8"),   # a Q/DQ conv whose output is not re-quantized
    (["Int8"], ["Int8"], "int8"),
    (["FP32"], ["Int8"], "int8"),   # a Quantize layer
    (["FP8"], ["FP16"], "fp8"),
    (["FP32"], ["FP16"], "fp16"),   # a reformat to half: what it writes
    (["Int64", "FP32"], ["FP32"], "fp32"),
])
def test_a_layer_reading_a_quantized_type_is_quantized(inputs, outputs, precision):
    layer = {"Name": "l", "Inputs": [{"Datatype": d} for d in inputs], "Outputs": [{"Datatype": d} for d in outputs]}
    assert layer_info(json.dumps({"Layers": [layer]}), 1)["layers"][0]["precision"] == precision
    ten = {"Name": "l", "Inputs": [{"Format/Datatype": f"Row major linear {d}"} for d in inputs],
           "Outputs": [{"Format/Datatype": f"Row major linear {d}"} for d in outputs]}
    assert layer_info(json.dumps({"Layers": [ten]}), 1)["layers"][0]["precision"] == precision


# -- the JSON each release writes, from the simulator --------------------------------------------------------------
@pytest.mark.parametrize("release", ["10.13.3.9", "11.4.0.106"])
@pytest.mark.parametrize("graph, before, precisions", [
    (graphs.tiny_cnn, 8, {"fp32": 5}),
    (graphs.qdq_conv, 6, {"int8": 2}),
    (graphs.fp16_cast_conv, 4, {"fp16": 2, "fp32": 1}),
])
def test_inspector_json_of_each_release(monkeypatch, tmp_path, release, graph, before, precisions):
    from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath, Profile

    sim = install(monkeypatch, version=release)
    trt = sim.trt
    path = graph(tmp_path / "g.onnx")
    shape = (3, 16, 16) if graph is graphs.tiny_cnn else (3, 8, 8)
    profile = Profile().add("x", (1, *shape), (2, *shape), (4, *shape))
    engine = EngineFromNetwork(NetworkFromOnnxPath(str(path), strongly_typed=release.startswith("10.")),
                               CreateConfig(profiles=[profile], profiling_verbosity=trt.ProfilingVerbosity.DETAILED))()
    text = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    info = layer_info(text, count_onnx_nodes(path))
    assert info["layers_before"] == before
    assert info["precisions"] == precisions and info["layers_after"] == sum(precisions.values())
    assert info["io_tensors"] == ["x", "y"]
    assert ("Bindings" in info["inspector"]) == release.startswith("10.")
