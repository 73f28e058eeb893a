"""Build side of the simulated TensorRT: loggers, the network (from the parsed ONNX graph) and the
Builder; parser.py holds the ONNX parser, config.py the builder config, profiles and timing cache.
Implementation classes: `module.py` turns each into the class a release exposes (members trimmed
and argument-checked from the binding JSON).
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from typing import Any

from . import plan as planfmt
from .graph import Graph
from .inspector import LAYER_TYPE


class Obj:
    """Base: `_s` is the module's State, `_m` the module (set on the release's classes)."""

    _s: Any
    _m: Any

    @classmethod
    def _new(cls, **fields: Any) -> Any:
        """An instance of this (release) class, made without its Python constructor."""
        obj = object.__new__(cls)
        for k, v in fields.items():
            object.__setattr__(obj, k, v)
        return obj

    def __enter__(self) -> Any:
        warnings.warn("Context managers for TensorRT types are deprecated. Memory will be freed automatically "
                      "when the reference count reaches 0.", DeprecationWarning, stacklevel=2)
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        return None

    def __del__(self) -> None:
        pass


class Flags:
    """set_flag/clear_flag/get_flag over a `_flags` bit field (builder config, ONNX parser)."""

    _flags: int

    def set_flag(self, flag: Any) -> None:
        object.__setattr__(self, "_flags", self._flags | (1 << int(flag)))

    def clear_flag(self, flag: Any) -> None:
        object.__setattr__(self, "_flags", self._flags & ~(1 << int(flag)))

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))


class ImplDims(Obj):
    """trt.Dims: a mutable shape; equal to a list or tuple of its values (not to another Dims, as
    pybind11 falls back to identity there); iterable through __getitem__; -1 = dynamic."""

    MAX_DIMS = 8

    def __init__(self, shape: Any = ()) -> None:
        object.__setattr__(self, "_d", [int(d) for d in shape])

    @classmethod
    def _invalid(cls) -> Any:
        """Dims with nbDims == -1 (what failed shape queries return): len() raises ValueError."""
        dims = cls()
        object.__setattr__(dims, "_nb_dims", -1)
        return dims

    def __len__(self) -> int:
        return getattr(self, "_nb_dims", len(self._d))

    def __getitem__(self, arg0: Any) -> Any:
        if isinstance(arg0, slice):
            return type(self)(self._d[arg0])
        if not -len(self._d) <= arg0 < len(self._d):
            raise IndexError("Out of bounds")
        return self._d[arg0]

    def __setitem__(self, arg0: Any, arg1: Any) -> None:
        if isinstance(arg0, slice):
            self._d[arg0] = list(arg1)
        elif not -len(self._d) <= arg0 < len(self._d):
            raise IndexError("Out of bounds")
        else:
            self._d[arg0] = int(arg1)

    def __eq__(self, arg0: Any) -> Any:
        if isinstance(arg0, (list, tuple)):
            return list(self._d) == list(arg0)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(tuple(self._d))

    __repr__ = __str__


# -- logging --------------------------------------------------------------------------------------------
class ImplILogger(Obj):
    def __init__(self) -> None:
        pass

    def log(self, severity: Any, msg: Any) -> None:
        pass


class ImplLogger(ImplILogger):
    """trt.Logger: prints messages at or above min_severity to stderr."""

    def __init__(self, min_severity: Any = None) -> None:
        self._min = min_severity if min_severity is not None else self._m.ILogger.Severity.WARNING

    @property
    def min_severity(self) -> Any:
        return self._min

    @min_severity.setter
    def min_severity(self, value: Any) -> None:
        self._min = value

    def log(self, severity: Any, msg: Any) -> None:
        if int(severity) <= int(self._min):
            print(f"[TRT] [{severity.name[0]}] {msg}", file=sys.stderr)


# -- network ------------------------------------------------------------------------------------------
class ImplITensor(Obj):
    _name: str
    _dtype: str
    _shape: tuple[int, ...]
    _is_input: bool
    _is_output: bool

    name = property(lambda self: self._name, lambda self, v: object.__setattr__(self, "_name", v))
    shape = property(lambda self: self._m.Dims(self._shape), lambda self, v: object.__setattr__(self, "_shape", tuple(v)))
    dtype = property(lambda self: self._m.DataType[self._dtype],
                     lambda self, v: object.__setattr__(self, "_dtype", v.name))
    is_network_input = property(lambda self: self._is_input)
    is_network_output = property(lambda self: self._is_output)
    is_shape_tensor = property(lambda self: False)
    is_execution_tensor = property(lambda self: True)
    location = property(lambda self: self._m.TensorLocation.DEVICE, lambda self, v: None)


class ImplILayer(Obj):
    _node: Any
    _net: Any

    name = property(lambda self: self._node.name, lambda self, v: None)
    type = property(lambda self: self._m.LayerType[LAYER_TYPE.get(self._node.op_type, "PLUGIN_V3")])
    num_inputs = property(lambda self: len(self._node.input))
    num_outputs = property(lambda self: len(self._node.output))
    metadata = property(lambda self: "", lambda self, v: None)
    precision = property(lambda self: self._m.DataType.FLOAT, lambda self, v: None)
    precision_is_set = property(lambda self: False)

    def get_input(self, index: int) -> Any:
        return self._net._tensor(self._node.input[index]) if 0 <= index < len(self._node.input) else None

    def get_output(self, index: int) -> Any:
        return self._net._tensor(self._node.output[index]) if 0 <= index < len(self._node.output) else None

    def get_output_type(self, index: int) -> Any:
        return self._m.DataType[self._net._graph.dtype_of(self._node.output[index])]


class ImplINetworkDefinition(Obj):
    _flags: int
    _graph: Graph | None
    _builder: Any

    def _init(self) -> None:
        object.__setattr__(self, "_graph", None)
        object.__setattr__(self, "_tensors", {})
        object.__setattr__(self, "_name", "Unnamed Network 0")

    name = property(lambda self: self._name, lambda self, v: object.__setattr__(self, "_name", v))
    flags = property(lambda self: self._flags)
    builder = property(lambda self: self._builder)
    has_implicit_batch_dimension = property(lambda self: False)
    num_inputs = property(lambda self: len(self._graph.inputs) if self._graph else 0)
    num_outputs = property(lambda self: len(self._graph.outputs) if self._graph else 0)
    num_layers = property(lambda self: len(self._graph.nodes) if self._graph else 0)

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))

    def _tensor(self, name: str) -> Any:
        if name not in self._tensors:
            g = self._graph
            io = {t.name: t for t in g.inputs + g.outputs}
            t = io.get(name)
            self._tensors[name] = self._m.ITensor._new(
                _name=name, _dtype=t.dtype if t else g.dtype_of(name), _shape=t.shape if t else (),
                _is_input=name in {x.name for x in g.inputs}, _is_output=name in {x.name for x in g.outputs})
        return self._tensors[name]

    def get_input(self, index: int) -> Any:
        ins = self._graph.inputs if self._graph else []
        return self._tensor(ins[index].name) if 0 <= index < len(ins) else None

    def get_output(self, index: int) -> Any:
        outs = self._graph.outputs if self._graph else []
        return self._tensor(outs[index].name) if 0 <= index < len(outs) else None

    def get_layer(self, index: int) -> Any:
        nodes = self._graph.nodes if self._graph else []
        return self._m.ILayer._new(_node=nodes[index], _net=self) if 0 <= index < len(nodes) else None

    def __len__(self) -> int:
        return self.num_layers

    def __getitem__(self, arg0: int) -> Any:
        if not 0 <= arg0 < self.num_layers:
            raise IndexError("Out of bounds")
        return self.get_layer(arg0)

    @property
    def _strongly_typed(self) -> bool:
        if self._s.major >= 11:
            return True  # the flag is deprecated and ignored: always strongly typed
        return self.get_flag(self._m.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


# -- builder ----------------------------------------------------------------------------------------------
class ImplBuilder(Obj):
    def __init__(self, logger: Any) -> None:
        object.__setattr__(self, "_logger", self._s.adopt_logger(self, logger, "createInferBuilder"))
        object.__setattr__(self, "_max_threads", 1)

    logger = property(lambda self: self._logger)
    max_threads = property(lambda self: self._max_threads, lambda self, v: object.__setattr__(self, "_max_threads", v))
    num_DLA_cores = property(lambda self: 0)
    max_DLA_batch_size = property(lambda self: 1)
    platform_has_fast_fp16 = property(lambda self: True)
    platform_has_fast_int8 = property(lambda self: True)
    platform_has_tf32 = property(lambda self: self._s.compute_capability() >= (8, 0))
    error_recorder = property(lambda self: None, lambda self, v: None)
    gpu_allocator = property(lambda self: None, lambda self, v: None)

    def create_network(self, flags: int = 0) -> Any:
        net = self._m.INetworkDefinition._new(_flags=int(flags), _builder=self)
        net._init()
        return net

    def create_builder_config(self) -> Any:
        config = self._m.IBuilderConfig._new()
        config._init(self)
        return config

    def create_optimization_profile(self) -> Any:
        profile = self._m.IOptimizationProfile._new()
        profile._init()
        return profile

    def is_network_supported(self, network: Any, config: Any) -> bool:
        return network._graph is not None

    def reset(self) -> None:
        pass

    def build_serialized_network(self, network: Any, config: Any, kernel_text: Any = None) -> Any:
        s = self._s
        if s.fail_build:
            s.emit(self._logger, "ERROR", s.fail_build)
            return None
        graph = network._graph
        if graph is None:
            s.emit(self._logger, "ERROR", "4: [network.cpp::validate] Error Code 4: Internal Error "
                   "(Network must have at least one output)")
            return None
        profiles = list(config._profiles)
        dynamic = [t for t in graph.inputs if -1 in t.shape]
        for t in dynamic:
            if not profiles or any(t.name not in p for p in profiles):
                s.emit(self._logger, "ERROR", f"4: [network.cpp::validate] Error Code 4: API Usage Error "
                       f"(Network has dynamic or shape inputs, but no optimization profile has been defined "
                       f"for {t.name}.)")
                return None
        if not profiles:
            profiles = [{}]
        for p in profiles:  # static inputs: min = opt = max = their shape
            for t in graph.inputs:
                p.setdefault(t.name, [list(t.shape)] * 3)
        flags = self._m.BuilderFlag.__members__
        precision = [f for f in ("FP16", "BF16", "INT8", "FP8", "INT4", "FP4") if f in flags and
                     config.get_flag(flags[f])]
        if network._strongly_typed and precision:  # 10.x: precision flags contradict strong typing
            s.emit(self._logger, "ERROR", f"4: [network.cpp::validate] Error Code 4: API Usage Error (Builder flag "
                   f"{precision[0]} is not allowed for a strongly typed network: types come from the network.)")
            return None
        fp16 = "FP16" in precision
        cc = s.compute_capability()
        if config._cache is not None:  # the build "times" each layer once: remember it in the cache
            key = hashlib.sha256(graph.model_bytes).hexdigest()[:16]
            config._cache._entries[key] = {"cc": list(cc), "layers": len(graph.nodes)}
        header = planfmt.header(s.version, cc, graph, profiles, fp16, config)
        return self._m.IHostMemory._make(planfmt.dump_plan(header, graph.model_bytes))

