"""Engine layers (plausible fusions of the ONNX nodes) and the engine inspector's JSON per release.

Fusions, as TensorRT's builder does them on these patterns:
- weights and their Q/DQ nodes are constant-folded into the layer that consumes them;
- an activation DequantizeLinear is folded into its consumer (which then reads Int8);
- a QuantizeLinear right after a conv/gemm is folded into it (the layer then writes Int8);
  one that is not becomes its own Quantize layer (Float/Half in, Int8 out);
- Conv/Gemm/MatMul absorb a following bias or residual Add and an activation (Conv+Add+ReLU);
  an elementwise op absorbs a following activation (PointWise).
Each layer's tensor precisions come from the graph's types (strongly typed networks: always on
11.x); a 10.x weakly typed network built with BuilderFlag.FP16 runs its float intermediates in Half.

JSON schemas (`get_engine_information(LayerInformationFormat.JSON)`), DETAILED verbosity:
- 10.x: {"Layers": [{"Name", "LayerType", "Inputs": [{"Name", "Location", "Dimensions",
  "Format/Datatype"}], "Outputs": [...], "TacticName", "StreamId", "Metadata"}], "Bindings": [names]}
  (as trtexec --exportLayerInfo writes it in 10.x; "Format/Datatype" strings such as
  "Row major linear FP32", "Thirty-two wide channel vectorized row major Int8 format").
- 11.x: the combined "Format/Datatype" is split into "Format" ("Row major linear") and
  "Datatype" ("FP32", "FP16", "Int8"), and "Bindings" is replaced by "I/O Tensors", a list of
  {"Name", "IOMode" ("Input"/"Output"), "DataType", "Dimensions", "Location"}.
  Based on: NVIDIA's trt-cookbook inspector code, which reads tensor["Format"] and
  tensor["Datatype"] when "Format/Datatype" is absent and js["I/O Tensors"][i]["Name"] when
  "Bindings" is absent (found with the code search; not in the 11.1 binding sources, which do not
  define the JSON), and third-party fixtures of 11.x inspector output with the same I/O fields.
LAYER_NAMES_ONLY (the default verbosity) gives "Layers" as a list of names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .graph import Graph

ACTIVATIONS = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "Elu", "Selu", "Softplus", "Gelu"}
COMPUTE = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}
LAYER_TYPE = {  # ONNX op -> the LayerType the network reports (trt.LayerType member)
    "Conv": "CONVOLUTION", "ConvTranspose": "DECONVOLUTION", "Gemm": "MATRIX_MULTIPLY", "MatMul": "MATRIX_MULTIPLY",
    "Add": "ELEMENTWISE", "Sub": "ELEMENTWISE", "Mul": "ELEMENTWISE", "Div": "ELEMENTWISE", "Pow": "ELEMENTWISE",
    "Max": "ELEMENTWISE", "Min": "ELEMENTWISE", "MaxPool": "POOLING", "AveragePool": "POOLING",
    "GlobalAveragePool": "REDUCE", "ReduceMean": "REDUCE", "ReduceSum": "REDUCE", "Reshape": "SHUFFLE",
    "Flatten": "SHUFFLE", "Transpose": "SHUFFLE", "Squeeze": "SHUFFLE", "Unsqueeze": "SHUFFLE",
    "QuantizeLinear": "QUANTIZE", "DequantizeLinear": "DEQUANTIZE", "Cast": "CAST", "NonZero": "NON_ZERO",
    "Concat": "CONCATENATION", "Softmax": "SOFTMAX", "Constant": "CONSTANT", "Identity": "IDENTITY",
    "Shape": "SHAPE", "Gather": "GATHER", "Slice": "SLICE", "Resize": "RESIZE", "TopK": "TOPK",
}
# engine layer types as the inspector names them
ENGINE_TYPE = {"Conv": "CaskConvolution", "ConvTranspose": "CaskDeconvolution", "Gemm": "CaskGemmMatrixMultiply",
               "MatMul": "CaskGemmMatrixMultiply", "QuantizeLinear": "Scale", "DequantizeLinear": "Scale",
               "MaxPool": "CaskPooling", "AveragePool": "CaskPooling", "GlobalAveragePool": "CaskPooling",
               "Reshape": "NoOp", "Flatten": "NoOp", "Cast": "Cast", "NonZero": "NonZero", "Concat": "NoOp",
               "Softmax": "CaskSoftMaxV2"}
FORMAT_10 = {"FLOAT": "Row major linear FP32", "HALF": "Row major linear FP16 format",
             "BF16": "Row major linear BF16 format", "INT8": "Row major linear Int8 format",
             "INT32": "Row major linear Int32", "INT64": "Row major linear Int64", "BOOL": "Row major linear Bool",
             "UINT8": "Row major linear UInt8", "FP8": "Row major linear FP8 format"}
INT8_CONV_FORMAT = "Thirty-two wide channel vectorized row major Int8 format"
DATATYPE_11 = {"FLOAT": "FP32", "HALF": "FP16", "BF16": "BF16", "INT8": "Int8", "INT32": "Int32",
               "INT64": "Int64", "BOOL": "Bool", "UINT8": "UInt8", "FP8": "FP8"}


@dataclass
class Layer:
    name: str
    engine_type: str
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (tensor, TensorRT dtype)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    vectorized: bool = False  # a convolution on Int8: channel-vectorized format


def fuse(graph: Graph, fp16: bool = False) -> list[Layer]:
    """The engine's layers for this graph (see the module docstring for the rules)."""
    nodes = graph.nodes
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in n.input:
            consumers.setdefault(t, []).append(i)
    io = {t.name for t in graph.inputs} | {t.name for t in graph.outputs}
    outputs = {t.name for t in graph.outputs}

    const = set(graph.initializers)
    folded: set[int] = set()
    for i, n in enumerate(nodes):  # constant folding (graph order is topological)
        if n.op_type == "Constant" or (n.input and all(not t or t in const for t in n.input)):
            folded.add(i)
            const.update(n.output)

    def dtype(name: str) -> str:
        d = graph.dtype_of(name)
        if fp16 and d == "FLOAT" and name not in io:
            return "HALF"
        return d

    def single_consumer(tensor: str) -> int | None:
        c = consumers.get(tensor, [])
        return c[0] if len(c) == 1 and tensor not in outputs else None

    used: set[int] = set(folded)
    layers = []
    for i, n in enumerate(nodes):
        if i in used:
            continue
        if n.op_type == "DequantizeLinear" and all(c not in used for c in consumers.get(n.output[0], [])) \
                and consumers.get(n.output[0]):
            continue  # folded into its consumer(s), handled there
        used.add(i)
        group = [i]
        # inputs: follow folded activation DQs back to their Int8 source
        ins: list[tuple[str, str]] = []
        names = []
        for t in n.input:
            if not t or t in const:
                continue
            src = _producer(nodes, t)
            if src is not None and nodes[src].op_type == "DequantizeLinear" and src not in folded:
                used.add(src)
                names.append(nodes[src].name)
                q_in = nodes[src].input[0]
                ins.append((q_in, dtype(q_in)))
            else:
                ins.append((t, dtype(t)))
        names += [nodes[j].name for j in _folded_inputs(nodes, n, folded)]
        out = n.output[0] if n.output else ""
        if n.op_type in COMPUTE | ELEMENTWISE:
            while (nxt := single_consumer(out)) is not None and nxt not in used:
                op = nodes[nxt].op_type
                if op in ACTIVATIONS or (op == "Add" and n.op_type in COMPUTE and len(group) == 1):
                    group.append(nxt)
                    used.add(nxt)
                    for t in nodes[nxt].input:
                        if t != out and t and t not in const:
                            ins.append((t, dtype(t)))
                    out = nodes[nxt].output[0]
                else:
                    break
            if n.op_type in COMPUTE and (nxt := single_consumer(out)) is not None and nxt not in used \
                    and nodes[nxt].op_type == "QuantizeLinear":
                group.append(nxt)
                used.add(nxt)
                out = nodes[nxt].output[0]
        engine_type = ENGINE_TYPE.get(n.op_type, "PointWise" if len(group) > 1 or n.op_type in ELEMENTWISE else n.op_type)
        if n.op_type == "QuantizeLinear":
            engine_type = "Scale"
        label = " + ".join(names + [nodes[j].name or f"{nodes[j].op_type}_{j}" for j in group])
        outs = [(out, dtype(out))] + [(t, dtype(t)) for t in n.output[1:]] if len(group) > 1 else \
            [(t, dtype(t)) for t in n.output]
        int8 = any(d == "INT8" for _, d in ins + outs)
        layers.append(Layer(label, engine_type, ins, outs, vectorized=int8 and n.op_type == "Conv"))
    return layers


def _producer(nodes: list, tensor: str) -> int | None:
    for i, n in enumerate(nodes):
        if tensor in n.output:
            return i
    return None


def _folded_inputs(nodes: list, node: Any, folded: set[int]) -> list[int]:
    """Constant-folded nodes feeding `node` (weight Q/DQ): named in the fused layer, in graph order."""
    out: set[int] = set()
    todo = list(node.input)
    while todo:
        src = _producer(nodes, todo.pop())
        if src is not None and src in folded and src not in out and nodes[src].op_type != "Constant":
            out.add(src)
            todo += list(nodes[src].input)
    return sorted(out)


def _dims(shapes: dict[str, tuple[int, ...]], name: str) -> list[int]:
    return list(shapes.get(name, ()))


def engine_information(header: dict[str, Any], layers: list[Layer], major: int, detailed: bool,
                       shapes: dict[str, tuple[int, ...]]) -> str:
    """get_engine_information(LayerInformationFormat.JSON) for one release's schema."""
    def tensor(name: str, dt: str, vectorized: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"Name": name, "Location": "Device", "Dimensions": _dims(shapes, name)}
        if major >= 11:
            entry["Format"] = ("Thirty-two wide channel vectorized row major" if vectorized and dt == "INT8"
                               else "Row major linear")
            entry["Datatype"] = DATATYPE_11.get(dt, dt)
        else:
            entry["Format/Datatype"] = INT8_CONV_FORMAT if vectorized and dt == "INT8" else FORMAT_10.get(dt, dt)
        return entry

    if detailed:
        body: list[Any] = [{
            "Name": layer.name, "LayerType": layer.engine_type,
            "Inputs": [tensor(n, d, layer.vectorized) for n, d in layer.inputs],
            "Outputs": [tensor(n, d, layer.vectorized) for n, d in layer.outputs],
            "TacticName": f"sim_{layer.engine_type.lower()}", "StreamId": 0, "Metadata": "",
        } for layer in layers]
    else:
        body = [layer.name for layer in layers]
    info: dict[str, Any] = {"Layers": body}
    io = header["io"]
    if major >= 11:
        info["I/O Tensors"] = [{"Name": t["name"], "IOMode": "Input" if t["mode"] == "INPUT" else "Output",
                                "DataType": DATATYPE_11.get(t["dtype"], t["dtype"]), "Dimensions": t["shape"],
                                "Location": "Device"} for t in io]
    else:
        info["Bindings"] = [t["name"] for t in io]
    return json.dumps(info, indent=2)


def layer_information(layer: Layer, major: int, detailed: bool, shapes: dict[str, tuple[int, ...]]) -> str:
    full = json.loads(engine_information({"io": []}, [layer], major, detailed, shapes))
    return json.dumps(full["Layers"][0]) if detailed else json.dumps(layer.name)
