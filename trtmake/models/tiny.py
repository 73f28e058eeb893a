"""Small, fast generators for tests: a CNN, an MLP and a two-input model with dynamic axes."""

from __future__ import annotations

from trtmake.heavy import lazy_import
np = lazy_import("numpy")
onnx = lazy_import("onnx")

from trtmake.models.layers import GraphBuilder, dim, he_normal, model, tensor


def tiny_cnn(seed: int = 0, batch: str | int = "dynamic") -> onnx.ModelProto:
    """`input` [batch,3,32,32] -> conv-bn-relu, strided conv, residual add, GAP, fc -> `logits`."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    w = g.init("conv1.weight", he_normal(rng, (8, 3, 3, 3)))
    x = g.node("Conv", ["input", w], "conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    bn = {"weight": rng.uniform(0.5, 1.5, 8), "bias": rng.normal(0.0, 0.1, 8),
          "running_mean": rng.normal(0.0, 0.1, 8), "running_var": rng.uniform(0.5, 1.5, 8)}
    bn_inputs = [g.init(f"bn1.{k}", v.astype(np.float32)) for k, v in bn.items()]
    x = g.node("Relu", [g.node("BatchNormalization", [x, *bn_inputs], "bn1")], "relu1")
    x = _conv(g, rng, x, "conv2", 8, 16, stride=2)
    skip = g.node("Relu", [x], "relu2")
    x = _conv(g, rng, skip, "conv3", 16, 16, stride=1)
    x = g.node("Relu", [g.node("Add", [x, skip], "add")], "relu3")
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x], "avgpool")], "flatten", axis=1)
    _linear(g, rng, x, "fc", 16, 10, "logits")
    n = dim(batch, "batch")
    return model(g, "tiny_cnn", [tensor("input", [n, 3, 32, 32])], [tensor("logits", [n, 10])])


def tiny_mlp(seed: int = 0, batch: str | int = "dynamic") -> onnx.ModelProto:
    """`x` [batch,16] -> Gemm 16x32, Relu, Gemm 32x4 -> `y` [batch,4]."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    h = g.node("Relu", [_linear(g, rng, "x", "fc1", 16, 32)], "relu")
    _linear(g, rng, h, "fc2", 32, 4, "y")
    n = dim(batch, "batch")
    return model(g, "tiny_mlp", [tensor("x", [n, 16])], [tensor("y", [n, 4])])


def tiny_two_input(seed: int = 0, batch: str | int = "dynamic", seq: str | int = "dynamic") -> onnx.ModelProto:
    """`tokens` [batch,seq,8], `mask` [batch,seq] -> mean over seq of Relu(tokens@W+b)*mask."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    w = g.init("proj.weight", he_normal(rng, (8, 8)))
    b = g.init("proj.bias", rng.normal(0.0, 0.1, 8).astype(np.float32))
    h = g.node("Add", [g.node("MatMul", ["tokens", w], "proj"), b], "proj_bias")
    h = g.node("Relu", [h], "relu")
    axes = g.init("mask_axes", np.array([-1], dtype=np.int64))
    m = g.node("Unsqueeze", ["mask", axes], "mask_unsqueeze")
    h = g.node("Mul", [h, m], "masked")
    g.node("ReduceMean", [h], "pool", "out", axes=[1], keepdims=0)
    n, s = dim(batch, "batch"), dim(seq, "seq")
    inputs = [tensor("tokens", [n, s, 8]), tensor("mask", [n, s])]
    return model(g, "tiny_two_input", inputs, [tensor("out", [n, 8])])


def _conv(g: GraphBuilder, rng, x: str, name: str, cin: int, cout: int, stride: int) -> str:
    """3x3 conv with bias, padding 1."""
    w = g.init(f"{name}.weight", he_normal(rng, (cout, cin, 3, 3)))
    b = g.init(f"{name}.bias", rng.normal(0.0, 0.1, cout).astype(np.float32))
    attrs = dict(kernel_shape=[3, 3], strides=[stride, stride], pads=[1, 1, 1, 1])
    return g.node("Conv", [x, w, b], name, **attrs)


def _linear(g: GraphBuilder, rng, x: str, name: str, cin: int, cout: int, output: str = "") -> str:
    """Gemm with a [cout, cin] weight (transB=1), like torch.nn.Linear."""
    bound = 1.0 / np.sqrt(cin)
    w = g.init(f"{name}.weight", rng.uniform(-bound, bound, (cout, cin)).astype(np.float32))
    b = g.init(f"{name}.bias", rng.uniform(-bound, bound, cout).astype(np.float32))
    return g.node("Gemm", [x, w, b], name, output, transB=1)
