"""The TensorRT QDQ dialect checker, on hand-written graphs that keep or break each rule."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtmake.errors import BuildFailed
from trtmake.precision.qdq_check import assert_tensorrt_dialect, check_tensorrt_dialect


def _init(name, value, dtype):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def qdq_conv(
    act_zp=np.int8(0), act_scale=0.05, weight_axis=0, weight_scales=4, weight_zp_dtype=np.int8,
    weight_pair=False, bias_int32=False, block_size=None, opset=17, q_zero_point=True,
) -> onnx.ModelProto:
    """x -> Q -> DQ -> Conv(W: int8 -> DQ per-channel [or float W -> Q -> DQ]) -> y."""
    rng = np.random.default_rng(0)
    inits = [
        _init("x_scale", act_scale, np.float32), _init("x_zp", act_zp, np.asarray(act_zp).dtype),
        _init("w_scale", np.full(weight_scales, 0.02), np.float32),
        _init("w_zp", np.zeros(weight_scales), weight_zp_dtype),
    ]
    q_inputs = ["x", "x_scale", "x_zp"] if q_zero_point else ["x", "x_scale"]
    nodes = [helper.make_node("QuantizeLinear", q_inputs, ["xq"], name="q_x"),
             helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xdq"], name="dq_x")]
    axis = {} if weight_scales == 1 else {"axis": weight_axis}
    if block_size:
        axis["block_size"] = block_size
    if weight_pair:
        inits.append(_init("w", rng.standard_normal((4, 3, 3, 3)), np.float32))
        nodes.append(helper.make_node("QuantizeLinear", ["w", "w_scale", "w_zp"], ["wq"], name="q_w", **axis))
    else:
        inits.append(_init("wq", rng.integers(-127, 128, (4, 3, 3, 3)), np.int8))
    nodes.append(helper.make_node("DequantizeLinear", ["wq", "w_scale", "w_zp"], ["wdq"], name="dq_w", **axis))
    conv_inputs = ["xdq", "wdq"]
    if bias_int32:
        inits += [_init("b", [1, 2, 3, 4], np.int32), _init("b_scale", np.full(4, 0.001), np.float32),
                  _init("b_zp", np.zeros(4), np.int32)]
        nodes.append(helper.make_node("DequantizeLinear", ["b", "b_scale", "b_zp"], ["bdq"], name="dq_b", axis=0))
        conv_inputs.append("bdq")
    nodes.append(helper.make_node("Conv", conv_inputs, ["y"], name="conv", pads=[1, 1, 1, 1]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def qdq_linear(op: str, weight_shape, axis: int, trans_b: int = 0) -> onnx.ModelProto:
    """x -> Q -> DQ -> Gemm/MatMul with a per-channel int8 weight on `axis`."""
    channels = weight_shape[axis]
    inits = [_init("x_scale", 0.05, np.float32), _init("x_zp", 0, np.int8),
             _init("wq", np.ones(weight_shape), np.int8), _init("w_scale", np.full(channels, 0.02), np.float32),
             _init("w_zp", np.zeros(channels), np.int8)]
    attrs = {"transB": trans_b} if op == "Gemm" else {}
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x"),
             helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xdq"], name="dq_x"),
             helper.make_node("DequantizeLinear", ["wq", "w_scale", "w_zp"], ["wdq"], name="dq_w", axis=axis),
             helper.make_node(op, ["xdq", "wdq"], ["y"], name="linear", **attrs)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_symmetric_int8_graph_passes():
    assert check_tensorrt_dialect(qdq_conv()) == []
    assert check_tensorrt_dialect(qdq_conv(weight_pair=True)) == []  # float weight + Q + DQ
    assert check_tensorrt_dialect(qdq_conv(weight_scales=1)) == []  # per-tensor weights are fine
    assert_tensorrt_dialect(qdq_conv(), "ok")


def test_the_valid_graph_really_runs():
    import onnxruntime as ort

    sess = ort.InferenceSession(qdq_conv().SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.ones((1, 3, 8, 8), np.float32)})[0].shape == (1, 4, 8, 8)


@pytest.mark.parametrize(("model", "message"), [
    (qdq_conv(act_zp=np.uint8(128)), "QuantizeLinear 'q_x': zero point is uint8"),
    (qdq_conv(act_zp=np.uint8(0)), "zero point is uint8"),
    (qdq_conv(act_zp=np.int8(3)), "zero point is not 0 \\(\\[3\\]\\)"),
    (qdq_conv(weight_zp_dtype=np.uint8), "DequantizeLinear 'dq_w': zero point is uint8"),
    (qdq_conv(q_zero_point=False), "QuantizeLinear 'q_x': no zero point, so it quantizes to uint8"),
    (qdq_conv(act_scale=-0.05), "scale has non-positive"),
    (qdq_conv(weight_axis=1), "per-channel axis 1 on weight 'wq' of Conv 'conv'; its output-channel axis is 0"),
    (qdq_conv(weight_axis=1, weight_scales=3, weight_pair=True), "per-channel axis 1 on weight 'w'"),
    (qdq_conv(bias_int32=True), "dequantizes an int32 tensor \\(a quantized bias\\)"),
    (qdq_conv(block_size=3, opset=21), "block-wise quantization"),
    (qdq_linear("Gemm", (6, 5), axis=0, trans_b=0), "axis 0 on weight 'wq' of Gemm 'linear'; its output-channel axis is 1"),
    (qdq_linear("Gemm", (5, 6), axis=1, trans_b=1), "axis 1 on weight 'wq' of Gemm 'linear'; its output-channel axis is 0"),
    (qdq_linear("MatMul", (6, 5), axis=0), "axis 0 on weight 'wq' of MatMul 'linear'; its output-channel axis is 1"),
])
def test_each_broken_rule_is_reported(model, message):
    violations = check_tensorrt_dialect(model)
    assert any(__import__("re").search(message, v) for v in violations), violations


@pytest.mark.parametrize("model", [
    qdq_linear("Gemm", (6, 5), axis=1, trans_b=0),
    qdq_linear("Gemm", (5, 6), axis=0, trans_b=1),
    qdq_linear("MatMul", (6, 5), axis=1),
])
def test_output_channel_axes_of_gemm_and_matmul_pass(model):
    assert check_tensorrt_dialect(model) == []


def test_per_channel_activation_scales_are_reported():
    model = qdq_conv()
    graph = model.graph
    for node in graph.node:
        if node.name in ("q_x", "dq_x"):
            node.attribute.append(helper.make_attribute("axis", 1))
            node.input[1], node.input[2] = "xs3", "xz3"
    graph.initializer.extend([_init("xs3", [0.1, 0.2, 0.3], np.float32), _init("xz3", [0, 0, 0], np.int8)])
    violations = check_tensorrt_dialect(model)
    assert any("QuantizeLinear 'q_x': activation has 3 scales (per-channel)" in v for v in violations)


def test_a_scale_that_is_not_a_constant_is_reported():
    model = qdq_conv()
    model.graph.input.append(helper.make_tensor_value_info("dyn_scale", TensorProto.FLOAT, []))
    model.graph.node[0].input[1] = "dyn_scale"
    assert "QuantizeLinear 'q_x': scale 'dyn_scale' is not a constant" in check_tensorrt_dialect(model)


def test_per_channel_weights_on_an_op_tensorrt_cannot_take_are_reported():
    model = qdq_conv()
    model.graph.node[-1].op_type = "Mul"  # the per-channel weight now feeds a Mul
    del model.graph.node[-1].attribute[:]
    assert any("feeds Mul 'conv' input 1" in v for v in check_tensorrt_dialect(model))


def test_assert_raises_build_failed_with_one_line():
    with pytest.raises(BuildFailed) as info:
        assert_tensorrt_dialect(qdq_conv(act_zp=np.uint8(128), weight_axis=1), "int8 graph of resnet50.onnx")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("int8 graph of resnet50.onnx: not in the TensorRT QDQ dialect: ")
    assert text.endswith("(and 2 more)")
