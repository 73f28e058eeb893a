"""Engine inspector JSON -> layer info, on inspector output in the shapes TensorRT writes."""

from __future__ import annotations

import json

import pytest

from trt_double import graphs
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
