"""The ONNX side of the simulator: graph facts, shape inference and execution with onnxruntime.

A simulated plan keeps the ONNX model (external data inlined), so an engine computes what the
graph computes: `Graph.run(feeds)` runs it on onnxruntime's CPU provider with one cached session.
`Graph.output_shapes(input_shapes)` is what the execution context reports before running;
a dimension ONNX shape inference cannot resolve from the input shapes (NonZero's count) is -1:
a data-dependent shape, delivered through an IOutputAllocator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, shape_inference

# ONNX element type -> TensorRT DataType member name
ONNX_TO_TRT = {TensorProto.FLOAT: "FLOAT", TensorProto.FLOAT16: "HALF", TensorProto.BFLOAT16: "BF16",
               TensorProto.INT8: "INT8", TensorProto.UINT8: "UINT8", TensorProto.INT32: "INT32",
               TensorProto.INT64: "INT64", TensorProto.BOOL: "BOOL", TensorProto.FLOAT8E4M3FN: "FP8",
               TensorProto.INT4: "INT4"}
NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT32": np.int32,
         "INT64": np.int64, "BOOL": np.bool_}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # TensorRT DataType member name
    shape: tuple[int, ...]  # -1 = dynamic


def _tensor(vi: onnx.ValueInfoProto) -> Tensor:
    t = vi.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
    return Tensor(vi.name, ONNX_TO_TRT.get(t.elem_type, "FLOAT"), dims)


class Graph:
    """An ONNX model held in memory (external data already inlined)."""

    def __init__(self, model_bytes: bytes) -> None:
        self.model_bytes = model_bytes
        self.model = onnx.load_from_string(model_bytes)
        g = self.model.graph
        inits = {i.name for i in g.initializer}
        self.inputs = [_tensor(v) for v in g.input if v.name not in inits]
        self.outputs = [_tensor(v) for v in g.output]
        self.nodes = list(g.node)
        self.initializers = {i.name: i for i in g.initializer}
        self._session: Any = None
        self._dtypes = self._value_types()

    def _value_types(self) -> dict[str, str]:
        """Element type of every named value (inputs, initializers, inferred intermediates)."""
        try:
            inferred = shape_inference.infer_shapes(self.model).graph
        except Exception:  # shape inference is best effort; types then come from I/O only
            inferred = self.model.graph
        out = {}
        for vi in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
            out[vi.name] = ONNX_TO_TRT.get(vi.type.tensor_type.elem_type, "FLOAT")
        for name, init in self.initializers.items():
            out[name] = ONNX_TO_TRT.get(init.data_type, "FLOAT")
        return out

    def dtype_of(self, name: str) -> str:
        return self._dtypes.get(name, "FLOAT")

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one Graph per engine, few shapes
    def output_shapes(self, input_shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> dict[str, tuple[int, ...]]:
        """Output shapes for concrete input shapes; -1 where the shape depends on the data."""
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        shapes = dict(input_shapes)
        for vi in model.graph.input:
            if vi.name in shapes:
                dims = vi.type.tensor_type.shape.dim
                for d, v in zip(dims, shapes[vi.name]):
                    d.Clear()
                    d.dim_value = int(v)
        del model.graph.value_info[:]
        for vi in model.graph.output:
            vi.type.tensor_type.ClearField("shape")
        inferred = shape_inference.infer_shapes(model, data_prop=True).graph
        out = {}
        for vi in inferred.output:
            t = vi.type.tensor_type
            out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        return out

    def intermediate_bytes(self, input_shapes: dict[str, tuple[int, ...]]) -> int:
        """Bytes of all intermediate activations for these input shapes (a device-memory estimate)."""
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        for vi in model.graph.input:
            if vi.name in input_shapes:
                for d, v in zip(vi.type.tensor_type.shape.dim, input_shapes[vi.name]):
                    d.Clear()
                    d.dim_value = int(v)
        try:
            inferred = shape_inference.infer_shapes(model, data_prop=True).graph
        except Exception:
            return 0
        total = 0
        for vi in inferred.value_info:
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            if all(d > 0 for d in dims):
                itemsize = np.dtype(NUMPY.get(ONNX_TO_TRT.get(vi.type.tensor_type.elem_type, "FLOAT"), np.float32)).itemsize
                total += int(np.prod(dims, dtype=np.int64)) * itemsize
        return (total + 255) // 256 * 256

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs of the graph for these inputs, by name (onnxruntime, CPU, one cached session)."""
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            # Basic level: Q/DQ pairs stay as they are, so int8 layers compute as TensorRT's do
            # (quantized values, exact integer products, one rounding per Q). At higher levels
            # onnxruntime fuses them into its CPU int8 kernels, whose u8s8 products saturate on
            # AVX2 machines: an onnxruntime artefact, not TensorRT's arithmetic.
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(self.model_bytes, opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in self._session.get_outputs()]
        return dict(zip(names, self._session.run(names, feeds)))


def load_onnx(path: str, data: bytes | None = None) -> bytes:
    """Serialized model with external data inlined (what the plan stores). `data`: the model's
    bytes when they are already in memory; external data is then looked up beside `path`."""
    if data is None:
        model = onnx.load(path, load_external_data=True)
    else:
        import os

        from onnx.external_data_helper import load_external_data_for_model

        model = onnx.load_from_string(data)
        if any(i.data_location == TensorProto.EXTERNAL for i in model.graph.initializer):
            load_external_data_for_model(model, os.path.dirname(path) if path else ".")
    for init in model.graph.initializer:
        if init.data_location == TensorProto.EXTERNAL:
            init.data_location = TensorProto.DEFAULT
            del init.external_data[:]
    return model.SerializeToString()
