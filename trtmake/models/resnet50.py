"""ResNet-50 v1.5 (torchvision layout) with seeded synthetic weights, written with onnx.helper.

The weights are random, not trained: accuracy measured on this model is agreement with its own
FP32 output, never ImageNet accuracy. BatchNorm running statistics are real ones: while the
graph is built, a float64 numpy forward pass over a few seeded image-like inputs (multi-scale
noise) measures each conv's per-channel mean and variance. So BN outputs are normalized, per-
channel ranges differ as in a trained net (what FP16/INT8 builds are sensitive to), activations
stay in range through all 16 blocks (the last BN gamma of each residual branch is small, as in
zero-init-residual practice but not zero), and the classifier bias centres the logits so that
the top-1 class depends on the input. Statistics are rounded to 11 significant bits, so the
output bytes do not depend on BLAS rounding differences between machines.
"""

from __future__ import annotations

import math

from trtmake.heavy import lazy_import

np = lazy_import("numpy")
onnx = lazy_import("onnx")
stride_tricks = lazy_import("numpy.lib.stride_tricks")

from trtmake.models.layers import GraphBuilder, dim, he_normal, model, tensor

STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride)
EXPANSION = 4
BN_EPS = 1e-5
RESIDUAL_GAMMA = 0.2  # scale of the last BN gamma in every residual branch
FC_GAIN = 8.0  # logits spread over a few units, as a trained classifier's do
CALIB_IMAGES, CALIB_SIZE = 2, 128  # the statistics pass: NHWC float64, kept small for speed

# The builders pass activations as (tensor name in the graph, NHWC float64 array of the pass).
Act = tuple[str, "np.ndarray"]


def resnet50(seed: int = 0, batch: str | int = "dynamic", num_classes: int = 1000,
             fold_bn: bool = False) -> onnx.ModelProto:
    """ResNet-50 v1.5: input `input` [batch,3,224,224] float32 -> `logits` [batch,num_classes]."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    x = ("input", _calibration_images(rng, CALIB_IMAGES, CALIB_SIZE))
    x = _conv_bn(g, rng, x, "conv1", "bn1", 64, 7, 2, 1.0, fold_bn)
    x = _relu(g, x, "relu")
    pool = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = (g.node("MaxPool", [x[0]], "maxpool", **pool), _maxpool(x[1]))
    for li, (width, blocks, stride) in enumerate(STAGES, 1):
        for b in range(blocks):
            x = _bottleneck(g, rng, x, f"layer{li}.{b}", width, stride if b == 0 else 1, fold_bn)
    name = g.node("GlobalAveragePool", [x[0]], "avgpool")
    name = g.node("Flatten", [name], "flatten", axis=1)
    w, b = _classifier(rng, x[1].mean(axis=(1, 2)), num_classes)
    g.node("Gemm", [name, g.init("fc.weight", w), g.init("fc.bias", b)], "fc", "logits", transB=1)
    n = dim(batch, "batch")
    return model(g, "resnet50", [tensor("input", [n, 3, 224, 224])], [tensor("logits", [n, num_classes])])


def _bottleneck(g, rng, x: Act, name, width, stride, fold) -> Act:
    """conv1x1-bn-relu, conv3x3(stride)-bn-relu, conv1x1-bn, (+ downsample), add, relu."""
    cout = width * EXPANSION
    y = _conv_bn(g, rng, x, f"{name}.conv1", f"{name}.bn1", width, 1, 1, 1.0, fold)
    y = _relu(g, y, f"{name}.relu1")
    y = _conv_bn(g, rng, y, f"{name}.conv2", f"{name}.bn2", width, 3, stride, 1.0, fold)
    y = _relu(g, y, f"{name}.relu2")
    y = _conv_bn(g, rng, y, f"{name}.conv3", f"{name}.bn3", cout, 1, 1, RESIDUAL_GAMMA, fold)
    if stride != 1 or x[1].shape[-1] != cout:
        conv, bn = f"{name}.downsample.0", f"{name}.downsample.1"
        x = _conv_bn(g, rng, x, conv, bn, cout, 1, stride, 1.0, fold)
    added = (g.node("Add", [y[0], x[0]], f"{name}.add"), y[1] + x[1])
    return _relu(g, added, f"{name}.relu3")


def _conv_bn(g, rng, x: Act, conv, bn, cout, k, stride, gamma_scale, fold) -> Act:
    """Conv (no bias) + BatchNormalization with measured statistics, or one Conv with BN folded."""
    name, act = x
    w = he_normal(rng, (cout, act.shape[-1], k, k))
    y = _conv(act, w.astype(np.float64), stride)
    mean, var = _coarse(y.mean(axis=(0, 1, 2))), _coarse(y.var(axis=(0, 1, 2)))
    gamma = gamma_scale * rng.uniform(0.5, 1.5, cout)
    beta = gamma_scale * rng.normal(-0.1, 0.3, cout)
    scale = gamma / np.sqrt(var + BN_EPS)
    shift = beta - mean * scale
    attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
    f32 = np.float32
    if fold:
        wf = (w.astype(np.float64) * scale[:, None, None, None]).astype(f32)
        inputs = [name, g.init(f"{conv}.weight", wf), g.init(f"{conv}.bias", shift.astype(f32))]
        out = g.node("Conv", inputs, conv, **attrs)
    else:
        y_name = g.node("Conv", [name, g.init(f"{conv}.weight", w)], conv, **attrs)
        params = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var}
        names = [g.init(f"{bn}.{key}", value.astype(f32)) for key, value in params.items()]
        out = g.node("BatchNormalization", [y_name, *names], bn, epsilon=BN_EPS)
    return out, y * scale + shift


def _relu(g, x: Act, name: str) -> Act:
    return g.node("Relu", [x[0]], name), np.maximum(x[1], 0.0)


def _classifier(rng, features, num_classes):
    """Uniform fc weights (FC_GAIN x torch.nn.Linear's bound); the bias centres the logits."""
    cin = features.shape[1]
    bound = FC_GAIN / math.sqrt(cin)
    w = rng.uniform(-bound, bound, (num_classes, cin)).astype(np.float32)
    centre = _coarse(features.mean(axis=0))
    bias = rng.uniform(-1.0, 1.0, num_classes) - (w.astype(np.float64) * centre).sum(axis=1)
    return w, bias.astype(np.float32)


def _conv(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """NHWC float64 convolution with 'same'-style padding k//2 (the statistics pass only)."""
    cout, cin, k, _ = w.shape
    if k == 1:
        x = x[:, ::stride, ::stride]
        return (x.reshape(-1, cin) @ w.reshape(cout, cin).T).reshape(*x.shape[:3], cout)
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    windows = stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.tensordot(windows, w, axes=([3, 4, 5], [1, 2, 3]))


def _maxpool(x: np.ndarray) -> np.ndarray:
    """MaxPool 3x3, stride 2, pad 1 on NHWC."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    return stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(4, 5))


def _calibration_images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Image-like NHWC inputs: equal-energy octaves of blocky noise, colour-correlated, ~N(0,1)."""
    img = np.zeros((n, size, size, 3))
    cells = size
    while cells >= 5:
        luma = rng.standard_normal((n, cells, cells, 1))
        noise = 0.8 * luma + 0.6 * rng.standard_normal((n, cells, cells, 3))
        rep = size // cells
        img += np.repeat(np.repeat(noise, rep, axis=1), rep, axis=2)
        cells //= 2
    return (img - img.mean(axis=(0, 1, 2))) / img.std(axis=(0, 1, 2))


def _coarse(values: np.ndarray) -> np.ndarray:
    """Round to 11 significant bits, so last-bit BLAS differences cannot change the bytes."""
    mantissa, exponent = np.frexp(values)
    return np.ldexp(np.round(mantissa * 2048.0) / 2048.0, exponent)
