"""onnx.helper building blocks shared by the generators: a graph builder, dims, the model."""

from __future__ import annotations

from trtmake.heavy import lazy_import
np = lazy_import("numpy")
onnx = lazy_import("onnx")
helper = lazy_import("onnx.helper")
numpy_helper = lazy_import("onnx.numpy_helper")

OPSET = 17
IR_VERSION = 8  # the IR version that introduced opset 17; older parsers accept it


class GraphBuilder:
    """Collects nodes and initializers in creation order; names are fixed by the caller."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def init(self, name: str, array: np.ndarray) -> str:
        """Add a constant tensor; returns its name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, output: str = "", **attrs) -> str:
        """Add one node named `name`; its single output is `output` (default: `name`)."""
        out = output or name
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out


def dim(value: str | int, symbol: str) -> str | int:
    """A shape dimension: the symbol when the param is "dynamic", else the fixed int."""
    return symbol if value == "dynamic" else int(value)


def tensor(name: str, shape: list[str | int]) -> onnx.ValueInfoProto:
    """A float32 graph input/output."""
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def model(g: GraphBuilder, name: str, inputs: list[onnx.ValueInfoProto],
          outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
    """Wrap the builder's graph into an opset-17 model with no timestamps or versions in it."""
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                             producer_name="trtmake.models")


def he_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """He (Kaiming) normal weights, fan-in mode, float32."""
    fan_in = int(np.prod(shape[1:]))
    w = rng.standard_normal(shape, dtype=np.float32)
    w *= np.float32(np.sqrt(2.0 / fan_in))
    return w
