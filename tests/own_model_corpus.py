"""ONNX files shaped like the ones users bring, which trtmake does not generate itself: old IR
versions that list weights as inputs, opsets 7 to 17, names with '/', ':' and '.', static and
dynamic batch, several inputs, int64 token ids, NHWC, outputs with trailing 1-dims, external
data. Tiny weights; every builder writes one file and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _w(rng, shape, name):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
    return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name)


def _save(model, path: Path, ir: int, **save) -> Path:
    model.ir_version = ir  # what the exporting tool stamped, not this onnx package's own
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path), **save)
    return path


def _model(nodes, name, inputs, outputs, inits, opset, weights_as_inputs=False):
    if weights_as_inputs:  # IR 3: every initializer is also a graph input
        inputs = inputs + [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def classic_caffe2(folder: Path) -> Path:
    """A Caffe2-era classifier: IR 3, opset 9, `data_0`, weights listed as inputs, a shape constant."""
    rng = np.random.default_rng(1)
    inits = [_w(rng, (8, 3, 3, 3), "conv1_w_0"), numpy_helper.from_array(np.zeros(8, np.float32), "conv1_b_0"),
             _w(rng, (10, 8), "fc_w_0"), numpy_helper.from_array(np.zeros(10, np.float32), "fc_b_0"),
             numpy_helper.from_array(np.array([1, 8], np.int64), "fc_b_0__SHAPE")]
    nodes = [helper.make_node("Conv", ["data_0", "conv1_w_0", "conv1_b_0"], ["conv1_1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv1_1"], ["conv1_2"]),
             helper.make_node("GlobalAveragePool", ["conv1_2"], ["pool_1"]),
             helper.make_node("Reshape", ["pool_1", "fc_b_0__SHAPE"], ["flat_1"]),
             helper.make_node("Gemm", ["flat_1", "fc_w_0", "fc_b_0"], ["fc_1"], transB=1),
             helper.make_node("Softmax", ["fc_1"], ["softmaxout_1"])]
    m = _model(nodes, "caffe2", [helper.make_tensor_value_info("data_0", F, [1, 3, 32, 32])],
               [helper.make_tensor_value_info("softmaxout_1", F, [1, 10])], inits, 9, weights_as_inputs=True)
    return _save(m, folder / "squeezenet_caffe2.onnx", 3)


def opset7_slash(folder: Path) -> Path:
    """Opset 7, IR 3, an input named `gpu_0/data_0` and nodes with '/' in their names."""
    rng = np.random.default_rng(2)
    inits = [_w(rng, (6, 3, 3, 3), "gpu_0/conv1_w_0"), _w(rng, (5, 6), "gpu_0/fc_w_0"),
             numpy_helper.from_array(np.zeros(5, np.float32), "gpu_0/fc_b_0")]
    nodes = [helper.make_node("Conv", ["gpu_0/data_0", "gpu_0/conv1_w_0"], ["gpu_0/conv1"], name="gpu_0/conv1"),
             helper.make_node("Relu", ["gpu_0/conv1"], ["gpu_0/relu1"], name="gpu_0/relu1"),
             helper.make_node("GlobalAveragePool", ["gpu_0/relu1"], ["gpu_0/pool"], name="gpu_0/pool"),
             helper.make_node("Flatten", ["gpu_0/pool"], ["gpu_0/flat"], name="gpu_0/flat"),
             helper.make_node("Gemm", ["gpu_0/flat", "gpu_0/fc_w_0", "gpu_0/fc_b_0"], ["gpu_0/softmax"],
                              name="gpu_0/fc", transB=1)]
    m = _model(nodes, "opset7", [helper.make_tensor_value_info("gpu_0/data_0", F, [1, 3, 16, 16])],
               [helper.make_tensor_value_info("gpu_0/softmax", F, [1, 5])], inits, 7, weights_as_inputs=True)
    return _save(m, folder / "gpu0_opset7.onnx", 3)


def nhwc_dynamic_batch(folder: Path) -> Path:
    """A TensorFlow-style export: opset 11, NHWC input `input_1:0` with a dynamic batch `unk__0`."""
    rng = np.random.default_rng(3)
    inits = [_w(rng, (8, 3, 3, 3), "model/conv/Conv2D/ReadVariableOp:0"), _w(rng, (8, 4), "model/dense/MatMul:0")]
    nodes = [helper.make_node("Transpose", ["input_1:0"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", inits[0].name], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("ReduceMean", ["relu"], ["mean"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["mean", inits[1].name], ["dense/BiasAdd:0"])]
    m = _model(nodes, "tf2onnx", [helper.make_tensor_value_info("input_1:0", F, ["unk__0", 12, 12, 3])],
               [helper.make_tensor_value_info("dense/BiasAdd:0", F, ["unk__0", 4])], inits, 11)
    return _save(m, folder / "tf_nhwc.onnx", 6)


def trailing_ones(folder: Path) -> Path:
    """Opset 13, a 1x1-conv classifier whose output is [1, 10, 1, 1] (class axis 1, not -1)."""
    rng = np.random.default_rng(4)
    inits = [_w(rng, (8, 3, 3, 3), "features.0.weight"), _w(rng, (10, 8, 1, 1), "classifier.1.weight")]
    nodes = [helper.make_node("Conv", ["input.1", "features.0.weight"], ["/features/0/Conv_output_0"],
                              name="/features/0/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["/features/0/Conv_output_0"], ["/features/1/Relu_output_0"],
                              name="/features/1/Relu"),
             helper.make_node("GlobalAveragePool", ["/features/1/Relu_output_0"], ["/pool/Pool_output_0"],
                              name="/pool/GlobalAveragePool"),
             helper.make_node("Conv", ["/pool/Pool_output_0", "classifier.1.weight"], ["logits"],
                              name="/classifier/1/Conv")]
    m = _model(nodes, "squeezenet_like", [helper.make_tensor_value_info("input.1", F, [1, 3, 16, 16])],
               [helper.make_tensor_value_info("logits", F, [1, 10, 1, 1])], inits, 13)
    return _save(m, folder / "squeeze_head.onnx", 7)


def two_inputs(folder: Path) -> Path:
    """Opset 17, two float inputs (`image` NCHW with a dynamic batch, `meta/scale`), two outputs."""
    rng = np.random.default_rng(5)
    inits = [_w(rng, (8, 3, 3, 3), "w"), _w(rng, (12, 6), "head")]
    nodes = [helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Concat", ["f", "meta/scale"], ["scaled"], axis=1),
             helper.make_node("MatMul", ["scaled", "head"], ["scores"]),
             helper.make_node("Softmax", ["scores"], ["probs"], axis=-1)]
    m = _model(nodes, "two_inputs",
               [helper.make_tensor_value_info("image", F, ["batch", 3, 16, 16]),
                helper.make_tensor_value_info("meta/scale", F, ["batch", 4])],
               [helper.make_tensor_value_info("scores", F, ["batch", 6]),
                helper.make_tensor_value_info("probs", F, ["batch", 6])], inits, 17)
    return _save(m, folder / "two_inputs.onnx", 8)


def token_ids(folder: Path, dynamic_seq: bool = False) -> Path:
    """Opset 13, int64 `input_ids` and `attention_mask` (a BERT-like head over a 50-word table)."""
    rng = np.random.default_rng(6)
    seq = "sequence" if dynamic_seq else 8
    inits = [numpy_helper.from_array(rng.standard_normal((50, 16)).astype(np.float32), "embeddings.word.weight"),
             _w(rng, (16, 3), "classifier.weight")]
    nodes = [helper.make_node("Gather", ["embeddings.word.weight", "input_ids"], ["emb"]),
             helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=F),
             helper.make_node("Unsqueeze", ["mask_f", "axes"], ["mask3"]),
             helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
             helper.make_node("ReduceMean", ["masked"], ["pooled"], axes=[1], keepdims=0),
             helper.make_node("MatMul", ["pooled", "classifier.weight"], ["logits"])]
    inits.append(numpy_helper.from_array(np.array([2], np.int64), "axes"))
    m = _model(nodes, "bert_head",
               [helper.make_tensor_value_info("input_ids", I64, ["batch", seq]),
                helper.make_tensor_value_info("attention_mask", I64, ["batch", seq])],
               [helper.make_tensor_value_info("logits", F, ["batch", 3])], inits, 13)
    return _save(m, folder / ("bert_dynamic_seq.onnx" if dynamic_seq else "bert_head.onnx"), 7)


def batchnorm_opset9(folder: Path) -> Path:
    """Opset 9, IR 4 (weights not listed as inputs): Conv + BatchNormalization + MaxPool, batch 2."""
    rng = np.random.default_rng(7)
    inits = [_w(rng, (8, 3, 3, 3), "conv.w"),
             numpy_helper.from_array(np.ones(8, np.float32), "bn.scale"),
             numpy_helper.from_array(np.zeros(8, np.float32), "bn.bias"),
             numpy_helper.from_array((rng.standard_normal(8) * 0.1).astype(np.float32), "bn.mean"),
             numpy_helper.from_array(np.ones(8, np.float32), "bn.var"),
             _w(rng, (7, 8), "fc.w"), numpy_helper.from_array(np.zeros(7, np.float32), "fc.b")]
    nodes = [helper.make_node("Conv", ["x", "conv.w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b"]),
             helper.make_node("Relu", ["b"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], transB=1)]
    m = _model(nodes, "bn", [helper.make_tensor_value_info("x", F, [2, 3, 16, 16])],
               [helper.make_tensor_value_info("y", F, [2, 7])], inits, 9)
    return _save(m, folder / "bn_opset9.onnx", 4)


def colon_names(folder: Path) -> Path:
    """Opset 11 with a TF-serving input name `serving_default_x:0` and output `StatefulPartitionedCall:0`."""
    rng = np.random.default_rng(8)
    inits = [_w(rng, (32, 24), "dense/kernel:0"), _w(rng, (24, 6), "dense_1/kernel:0")]
    nodes = [helper.make_node("MatMul", ["serving_default_x:0", "dense/kernel:0"], ["h"]),
             helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("MatMul", ["hr", "dense_1/kernel:0"], ["StatefulPartitionedCall:0"])]
    m = _model(nodes, "serving", [helper.make_tensor_value_info("serving_default_x:0", F, [1, 32])],
               [helper.make_tensor_value_info("StatefulPartitionedCall:0", F, [1, 6])], inits, 11)
    return _save(m, folder / "tf_serving.onnx", 6)


def external_weights(folder: Path) -> Path:
    """Opset 17, weights in an external-data file next to the graph (as torch writes > 2 GB models)."""
    rng = np.random.default_rng(9)
    inits = [_w(rng, (8, 3, 3, 3), "conv.weight"), _w(rng, (10, 8), "fc.weight")]
    nodes = [helper.make_node("Conv", ["pixel_values", "conv.weight"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc.weight"], ["logits"], transB=1)]
    m = _model(nodes, "external", [helper.make_tensor_value_info("pixel_values", F, ["batch_size", 3, 16, 16])],
               [helper.make_tensor_value_info("logits", F, ["batch_size", 10])], inits, 17)
    return _save(m, folder / "external" / "vit_tiny.onnx", 8, save_as_external_data=True,
                 all_tensors_to_one_file=True, location="vit_tiny.onnx.data", size_threshold=0)


def external_opset11(folder: Path) -> Path:
    """Opset 11 with external data: int8 cannot upgrade it in place, so weights go per-tensor."""
    rng = np.random.default_rng(10)
    inits = [_w(rng, (8, 3, 3, 3), "w1"), _w(rng, (6, 8), "w2")]
    nodes = [helper.make_node("Conv", ["in", "w1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w2"], ["out"], transB=1)]
    m = _model(nodes, "ext11", [helper.make_tensor_value_info("in", F, [1, 3, 16, 16])],
               [helper.make_tensor_value_info("out", F, [1, 6])], inits, 11)
    return _save(m, folder / "ext11" / "mobilenet_old.onnx", 6, save_as_external_data=True,
                 all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)


def mlp_opset17_new_ir(folder: Path) -> Path:
    """Opset 17 stamped with this onnx package's newest IR version (what helper.make_model writes)."""
    rng = np.random.default_rng(11)
    inits = [_w(rng, (20, 12), "fc1"), _w(rng, (12, 4), "fc2")]
    nodes = [helper.make_node("MatMul", ["features", "fc1"], ["h"]), helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("MatMul", ["hr", "fc2"], ["scores"])]
    m = _model(nodes, "mlp", [helper.make_tensor_value_info("features", F, ["N", 20])],
               [helper.make_tensor_value_info("scores", F, ["N", 4])], inits, 17)
    return _save(m, folder / "mlp_new_ir.onnx", onnx.IR_VERSION)


def type_error(folder: Path) -> Path:
    """A graph onnx.checker accepts but onnxruntime refuses: Add of an int64 input and a float."""
    nodes = [helper.make_node("Add", ["ids", "bias"], ["y"])]
    inits = [numpy_helper.from_array(np.ones(4, np.float32), "bias")]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("ids", I64, [1, 4])],
                              [helper.make_tensor_value_info("y", F, [1, 4])], initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return _save(m, folder / "bad_types.onnx", 7)


def big_external(folder: Path, gigabytes: float = 2.2) -> Path:
    """More than 2 GB of weights in external data (a 2 GB protobuf cannot hold them): a zero
    embedding table read by Gather, written as a sparse file (cheap on disk)."""
    rows = int(gigabytes * (1 << 30)) // (4 * 64)
    table = TensorProto(name="table", data_type=F, dims=[rows, 64])
    table.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "big.bin"), ("offset", "0"), ("length", str(rows * 64 * 4))):
        entry = table.external_data.add()
        entry.key, entry.value = key, value
    nodes = [helper.make_node("Gather", ["table", "ids"], ["rows"]),
             helper.make_node("ReduceSum", ["rows"], ["total"], axes=[1], keepdims=0)]
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("ids", I64, [1, 4])],
                              [helper.make_tensor_value_info("total", F, [1, 64])], initializer=[table])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    out = folder / "big" / "huge_embedding.onnx"
    _save(m, out, 6)
    with open(out.parent / "big.bin", "wb") as f:
        f.truncate(rows * 64 * 4)  # sparse: zeros that take no disk
    return out


CORPUS = {f.__name__: f for f in (classic_caffe2, opset7_slash, nhwc_dynamic_batch, trailing_ones, two_inputs,
                                   token_ids, batchnorm_opset9, colon_names, external_weights, external_opset11,
                                   mlp_opset17_new_ir)}
