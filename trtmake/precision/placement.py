"""Where the TensorRT dialect puts Q/DQ: the placement TensorRT fuses (pure onnx).

Following TensorRT's Q/DQ placement recommendations and NVIDIA ModelOpt's ONNX quantizer
(`modelopt/onnx/quantization/graph_utils.py`, `partitioning.py`):
- compute layers (Conv, ConvTranspose, Gemm, MatMul) read quantized inputs and weights;
- a residual Add quantizes only its skip input: the other input comes from a Conv (the
  "backbone", through Relu/BatchNormalization) that TensorRT fuses with the Add as its
  epilogue, so a Q/DQ there would break the Conv+Add(+ReLU) fusion (ModelOpt's
  `build_non_residual_input_map`: the input on the longer path to the two inputs' lowest
  common ancestor is the Conv branch);
- a matrix-vector product (Gemm, or MatMul on a rank-2 activation: M is the batch, e.g. the
  classifier) stays in float: it cannot use the int8 tensor cores and its Q/DQ only costs time
  (ModelOpt's GEMV rule); `precision.quantize_gemm` quantizes it anyway;
- a pooling layer is quantized only when what reads it (through copy ops) is quantized.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from trtmake.heavy import lazy_import
onnx = lazy_import("onnx")

LINEAR = ("Conv", "ConvTranspose", "Gemm", "MatMul")
POOLING = ("AveragePool", "GlobalAveragePool", "MaxPool", "GlobalMaxPool")
# ops a Conv's output may pass through and still fuse into it (ModelOpt's fusible backbone paths)
_EPILOGUE = ("Relu", "BatchNormalization")
# ops that only move data: a pooling layer read through them by a quantized layer is quantized
_COPY = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Expand", "Slice", "Concat",
         "Split", "Gather")


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.nodes = list(graph.node)
        self.consts = {t.name for t in graph.initializer}
        self.consts |= {o for n in self.nodes if n.op_type == "Constant" for o in n.output}
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.ranks = {v.name: len(v.type.tensor_type.shape.dim)
                      for v in (*graph.value_info, *graph.input, *graph.output) if v.type.tensor_type.HasField("shape")}
        self.initializer_ranks = {t.name: len(t.dims) for t in graph.initializer}

    def backbone(self, node: onnx.NodeProto | None) -> onnx.NodeProto | None:
        """The Conv whose fused epilogue `node` is (the Conv itself, or through Relu/BN)."""
        while node is not None:
            if node.op_type in ("Conv", "ConvTranspose"):
                return node
            if node.op_type not in _EPILOGUE:
                return None
            node = self.producer.get(node.input[0])
        return None

    def ancestors(self, node: onnx.NodeProto) -> dict[str, int]:
        """Every node `node` depends on (itself included), with its distance in edges."""
        dist = {node.name or id(node): 0}
        queue = deque([(node, 0)])
        while queue:
            current, d = queue.popleft()
            for name in current.input:
                parent = self.producer.get(name)
                if parent is None:
                    continue
                key = parent.name or id(parent)
                if key not in dist:
                    dist[key] = d + 1
                    queue.append((parent, d + 1))
        return dist


def conv_branch_inputs(model: onnx.ModelProto) -> dict[str, str]:
    """Residual Adds: the Add's name -> its input from the Conv branch (left in float)."""
    g = _Graph(model)
    out = {}
    for node in g.nodes:
        if node.op_type != "Add" or len(node.input) != 2 or not node.name:
            continue
        if any(i in g.consts or i not in g.producer for i in node.input):
            continue  # a bias or a graph input: no residual
        first, second = (g.producer[i] for i in node.input)
        bb1, bb2 = g.backbone(first), g.backbone(second)
        if bb1 is None and bb2 is None:
            continue
        up1, up2 = g.ancestors(first), g.ancestors(second)
        common = set(up1) & set(up2)
        lca = min(common, key=lambda k: (up1[k] + up2[k], up1[k])) if common else None
        d1, d2 = (up1[lca], up2[lca]) if lca is not None else (0, 0)
        if bb1 is not None and bb2 is not None:
            if bb1 is bb2:
                continue
            out[node.name] = node.input[0] if d1 > d2 else node.input[1]
        elif bb1 is not None:
            if lca != bb1.name:  # a Conv that also feeds the other branch is no residual
                out[node.name] = node.input[0]
        elif lca != bb2.name:
            out[node.name] = node.input[1]
    return out


def matrix_vector_nodes(model: onnx.ModelProto) -> list[str]:
    """Gemm, and MatMul with a constant 2-D weight on a rank-2 activation: M is the batch."""
    g = _Graph(model)
    out = []
    for node in g.nodes:
        if not node.name or len(node.input) < 2:
            continue
        if node.op_type == "Gemm":
            out.append(node.name)
        elif (node.op_type == "MatMul" and node.input[1] in g.consts
              and g.initializer_ranks.get(node.input[1], 2) == 2 and g.ranks.get(node.input[0]) == 2):
            out.append(node.name)
    return out


def unread_pooling_nodes(model: onnx.ModelProto, quantized: Iterable[str]) -> list[str]:
    """Pooling nodes no quantized layer reads (directly or through copy ops): left in float."""
    g = _Graph(model)
    quantized = set(quantized)

    def read_by_quantized(node: onnx.NodeProto, seen: set) -> bool:
        for name in node.output:
            for reader in g.readers.get(name, []):
                if reader.name in quantized:
                    return True
                if reader.op_type in _COPY and id(reader) not in seen:
                    seen.add(id(reader))
                    if read_by_quantized(reader, seen):
                        return True
        return False

    return [n.name for n in g.nodes if n.op_type in POOLING and n.name and not read_by_quantized(n, set())]


def drop_input_qdq(model: onnx.ModelProto, inputs: dict[str, str]) -> int:
    """Let each named node read its float input (node name -> tensor) instead of the DQ of it;
    Q/DQ nodes and constants left unread are removed. Edits `model`; returns inputs freed."""
    graph = model.graph
    by_name = {n.name: n for n in graph.node if n.name}
    producer = {o: n for n in graph.node for o in n.output}
    freed = 0
    for name, tensor in inputs.items():
        node = by_name.get(name)
        if node is None:
            continue
        for index, current in enumerate(node.input):
            dq = producer.get(current)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] == tensor:
                node.input[index] = tensor
                freed += 1
    _remove_unread(graph)
    return freed


def _remove_unread(graph: onnx.GraphProto) -> None:
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {i for n in graph.node for i in n.input} | outputs
    for init in [t for t in graph.initializer if t.name not in read]:
        graph.initializer.remove(init)
