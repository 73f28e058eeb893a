"""ONNX parser of the simulated TensorRT: reads the model with `onnx`, rejects unsupported ops
(the `unsupported_ops` knob, any op of a custom domain) with ParserErrors logged as TensorRT does."""

from __future__ import annotations

from typing import Any

from .build import Flags, Obj
from .graph import Graph, load_onnx


# -- ONNX parser -------------------------------------------------------------------------------------------
class ImplParserError(Obj):
    _code: str
    _desc: str
    _node: int
    _node_name: str
    _op: str

    def code(self) -> Any:
        return self._m.ErrorCode[self._code]

    def desc(self) -> str:
        return self._desc

    def file(self) -> str:
        return "ModelImporter.cpp"

    def func(self) -> str:
        return "parseNode"

    def line(self) -> int:
        return 0

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._node_name

    def node_operator(self) -> str:
        return self._op

    def local_function_stack(self) -> list[str]:
        return []

    def local_function_stack_size(self) -> int:
        return 0

    def __str__(self) -> str:
        return (f"In node {self._node} with name: {self._node_name} and operator: {self._op} (parseNode): "
                f"{self._code}: {self._desc}")

    __repr__ = __str__


class ImplOnnxParser(Flags, Obj):
    def __init__(self, network: Any, logger: Any) -> None:
        object.__setattr__(self, "_network", network)
        object.__setattr__(self, "_logger", logger)
        object.__setattr__(self, "_errors", [])
        object.__setattr__(self, "_flags", 0)

    num_errors = property(lambda self: len(self._errors))
    num_subgraphs = property(lambda self: 0)
    flags = property(lambda self: self._flags, lambda self, v: object.__setattr__(self, "_flags", int(v)))

    def get_error(self, index: int) -> Any:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()

    def supports_operator(self, op_name: str) -> bool:
        return op_name not in self._s.unsupported_ops

    def get_used_vc_plugin_libraries(self) -> list[str]:
        return []

    def set_builder_config(self, builder_config: Any) -> bool:
        return True

    def parse_from_file(self, model: str) -> bool:
        try:
            data = load_onnx(model)
        except Exception as exc:  # what the real parser reports for a missing or corrupt file
            self._error(-1, "", "", "MODEL_DESERIALIZE_FAILED", f"Failed to parse ONNX model from file: {model}: {exc}")
            return False
        return self._parse(data)

    def parse(self, model: Any, path: str | None = None) -> bool:
        """Bytes of a model; external data is read relative to `path`, as the real parser does."""
        try:
            data = load_onnx(path or "", bytes(memoryview(model)))
        except Exception as exc:
            self._error(-1, "", "", "MODEL_DESERIALIZE_FAILED", f"Failed to parse the ONNX model: {exc}")
            return False
        return self._parse(data)

    def _error(self, node: int, name: str, op: str, code: str, desc: str) -> None:
        err = self._m.ParserError._new(_code=code, _desc=desc, _node=node, _node_name=name, _op=op)
        self._errors.append(err)
        self._s.emit(self._logger, "ERROR", str(err))

    def _parse(self, data: bytes) -> bool:
        try:
            graph = Graph(data)
        except Exception as exc:
            self._error(-1, "", "", "MODEL_DESERIALIZE_FAILED", f"Failed to parse the ONNX model: {exc}")
            return False
        for i, n in enumerate(graph.nodes):
            if n.op_type in self._s.unsupported_ops or n.domain not in ("", "ai.onnx"):
                self._error(i, n.name, n.op_type, "UNSUPPORTED_NODE",
                            f"No importer registered for op: {n.op_type}. Attempting to import as plugin.")
        if self._errors:
            return False
        object.__setattr__(self._network, "_graph", graph)
        return True
