"""Build side of the simulated TensorRT: loggers, Builder, network, ONNX parser, builder config,
optimization profiles, timing cache, host memory. Implementation classes; `module.py` turns each
into the class a release exposes (members trimmed and argument-checked from the binding JSON).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from . import plan as planfmt
from .graph import Graph, load_onnx
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
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        return None

    def __del__(self) -> None:
        pass


class Dims(tuple):
    """trt.Dims: a shape; compares equal to the tuple of its values; -1 = dynamic."""

    MAX_DIMS = 8

    def __repr__(self) -> str:
        return str(tuple(self)) if len(self) != 1 else f"({self[0]},)"


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
    shape = property(lambda self: Dims(self._shape), lambda self, v: object.__setattr__(self, "_shape", tuple(v)))
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


class ImplOnnxParser(Obj):
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

    def set_flag(self, flag: Any) -> None:
        object.__setattr__(self, "_flags", self._flags | (1 << int(flag)))

    def clear_flag(self, flag: Any) -> None:
        object.__setattr__(self, "_flags", self._flags & ~(1 << int(flag)))

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))

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
        return self._parse(bytes(memoryview(model)))

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


# -- builder config ----------------------------------------------------------------------------------------------
class ImplIOptimizationProfile(Obj):
    def _init(self) -> None:
        object.__setattr__(self, "_shapes", {})
        object.__setattr__(self, "_extra", 1.0)

    extra_memory_target = property(lambda self: self._extra, lambda self, v: object.__setattr__(self, "_extra", v))

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        shapes = [tuple(int(d) for d in s) for s in (min, opt, max)]
        for i, which in enumerate(("min", "opt", "max")):
            ok = len(shapes[i]) == len(shapes[0]) and all(d >= 0 for d in shapes[i]) and all(
                a <= b for a, b in zip(shapes[0], shapes[i])) and (i < 2 or all(
                    a <= b for a, b in zip(shapes[1], shapes[2])))
            if not ok:
                self._s.emit(self._s._logger, "ERROR", f"3: [optimizationProfile.cpp::setDimensions] Error Code 3: "
                             f"API Usage Error (Parameter check failed, condition: std::all_of(dims.d, dims.d + "
                             f"dims.nbDims, [](int64_t x) noexcept {{ return x >= 0; }}) and min <= opt <= max for {input})")
                raise RuntimeError(f"Shape provided for {which} is inconsistent with other shapes.")
        self._shapes[input] = shapes

    def get_shape(self, input: str) -> list[Any]:
        return [Dims(s) for s in self._shapes.get(input, [])]

    def set_shape_input(self, input: str, min: Any, opt: Any, max: Any) -> None:
        raise RuntimeError("Shape provided for min is inconsistent with other shapes.")  # no shape tensors here

    def get_shape_input(self, input: str) -> list[Any]:
        return []

    def __bool__(self) -> bool:
        return True

    __nonzero__ = __bool__


class ImplITimingCache(Obj):
    _entries: dict[str, Any]
    _release: str
    _cc: tuple[int, int]

    def serialize(self) -> Any:
        return self._m.IHostMemory._make(planfmt.dump_cache(self._release, self._cc, self._entries))

    def combine(self, input_cache: Any, ignore_mismatch: bool) -> bool:
        if tuple(input_cache._cc) != tuple(self._cc) and not ignore_mismatch:
            self._s.emit(self._s._logger, "ERROR", "1: [timingCache.cpp::combine] Error Code 1: Internal Error "
                         "(Timing cache device properties mismatch; use ignore_mismatch to combine anyway)")
            return False
        self._entries.update(input_cache._entries)
        return True

    def reset(self) -> bool:
        self._entries.clear()
        return True


class ImplIHostMemory(bytes):
    """Serialized data; bytes(mem), memoryview(mem) and file.write(mem) work as on the real type."""

    _m: Any

    @classmethod
    def _make(cls, data: bytes) -> Any:
        return bytes.__new__(cls, data)

    dtype = property(lambda self: self._m.DataType.UINT8)
    nbytes = property(lambda self: len(self))

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        return None

    def __del__(self) -> None:
        pass


class ImplIBuilderConfig(Obj):
    def _init(self, builder: Any) -> None:
        vals = dict(_builder=builder, _flags=0, _pools={}, _profiles=[], _cache=None, _opt_level=3,
                    _hw=self._m.HardwareCompatibilityLevel.NONE, _verbosity=self._m.ProfilingVerbosity.LAYER_NAMES_ONLY,
                    _tiling=self._m.TilingOptimizationLevel.NONE, _aux=-1, _misc={})
        for k, v in vals.items():
            object.__setattr__(self, k, v)

    def _prop(name: str, default: Any = None) -> property:  # noqa: N805 - a helper used in the class body
        return property(lambda self: self._misc.get(name, default),
                        lambda self, v: self._misc.__setitem__(name, v))

    flags = property(lambda self: self._flags, lambda self, v: object.__setattr__(self, "_flags", int(v)))
    builder_optimization_level = property(lambda self: self._opt_level,
                                          lambda self, v: object.__setattr__(self, "_opt_level", int(v)))
    hardware_compatibility_level = property(lambda self: self._hw, lambda self, v: object.__setattr__(self, "_hw", v))
    profiling_verbosity = property(lambda self: self._verbosity,
                                   lambda self, v: object.__setattr__(self, "_verbosity", v))
    tiling_optimization_level = property(lambda self: self._tiling,
                                         lambda self, v: object.__setattr__(self, "_tiling", v))
    max_aux_streams = property(lambda self: self._aux, lambda self, v: object.__setattr__(self, "_aux", int(v)))
    num_optimization_profiles = property(lambda self: len(self._profiles))
    avg_timing_iterations = _prop("avg_timing_iterations", 1)
    DLA_core = _prop("DLA_core", -1)
    engine_capability = _prop("engine_capability")
    default_device_type = _prop("default_device_type")
    profile_stream = _prop("profile_stream", 0)
    progress_monitor = _prop("progress_monitor")
    runtime_platform = _prop("runtime_platform")
    max_num_tactics = _prop("max_num_tactics", -1)
    l2_limit_for_tiling = _prop("l2_limit_for_tiling", -1)
    plugins_to_serialize = _prop("plugins_to_serialize", [])
    remote_auto_tuning_config = _prop("remote_auto_tuning_config", "")
    int8_calibrator = _prop("int8_calibrator")
    algorithm_selector = _prop("algorithm_selector")
    quantization_flags = _prop("quantization_flags", 0)
    build_route = _prop("build_route")
    del _prop

    def set_flag(self, flag: Any) -> None:
        object.__setattr__(self, "_flags", self._flags | (1 << int(flag)))

    def clear_flag(self, flag: Any) -> None:
        object.__setattr__(self, "_flags", self._flags & ~(1 << int(flag)))

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self._pools[pool.name] = int(pool_size)

    def get_memory_pool_limit(self, pool: Any) -> int:
        return self._pools.get(pool.name, 80 * 1024**3 if pool.name == "WORKSPACE" else 0)

    def set_preview_feature(self, feature: Any, enable: bool) -> None:
        self._misc[f"preview:{feature.name}"] = bool(enable)

    def get_preview_feature(self, feature: Any) -> bool:
        return self._misc.get(f"preview:{feature.name}", False)

    def set_tactic_sources(self, tactic_sources: int) -> bool:
        self._misc["tactics"] = int(tactic_sources)
        return True

    def get_tactic_sources(self) -> int:
        return self._misc.get("tactics", 0)

    def add_optimization_profile(self, profile: Any) -> int:
        if not profile._shapes:
            self._s.emit(self._s._logger, "ERROR", "4: [builderConfig.cpp::addOptimizationProfile] Error Code 4: "
                         "API Usage Error (Optimization profile is invalid: no shapes were set)")
            return -1
        self._profiles.append({k: list(v) for k, v in profile._shapes.items()})
        return len(self._profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: Any) -> Any:
        data = bytes(memoryview(serialized_timing_cache))
        cc = self._s.compute_capability()
        entries: dict[str, Any] = {}
        if data:
            try:
                release, cache_cc, entries = planfmt.load_cache(data)
                if release != self._s.version:
                    raise planfmt.FormatError(
                        f"Serialization assertion stdVersionRead == kSERIALIZATION_VERSION failed.Version tag does "
                        f"not match. Note: Current Version: {self._s.version}, Serialized Cache Version: {release}")
                cc = cache_cc
            except planfmt.FormatError as exc:
                self._s.emit(self._s._logger, "ERROR", "1: [stdArchiveReader.cpp::StdArchiveReaderInitCommon] "
                             f"Error Code 1: Serialization ({exc})")
                self._s.emit(self._s._logger, "ERROR", "4: The timing cache will not be used!")
                entries, cc = {}, self._s.compute_capability()
        return self._m.ITimingCache._new(_entries=dict(entries), _release=self._s.version, _cc=tuple(cc))

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        if tuple(cache._cc) != self._s.compute_capability() and not ignore_mismatch:
            self._s.emit(self._s._logger, "ERROR", "4: [builderConfig.cpp::setTimingCache] Error Code 4: API Usage "
                         "Error (Timing cache was created on a device with different properties)")
            return False
        object.__setattr__(self, "_cache", cache)
        return True

    def get_timing_cache(self) -> Any:
        return self._cache

    def reset(self) -> None:
        self._init(self._builder)

    def can_run_on_DLA(self, layer: Any) -> bool:
        return False


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
        fp16 = (not network._strongly_typed) and "FP16" in self._m.BuilderFlag.__members__ and \
            config.get_flag(self._m.BuilderFlag.FP16)
        cc = s.compute_capability()
        if config._cache is not None:  # the build "times" each layer once: remember it in the cache
            key = hashlib.sha256(graph.model_bytes).hexdigest()[:16]
            config._cache._entries[key] = {"cc": list(cc), "layers": len(graph.nodes)}
        header = planfmt.header(s.version, cc, graph, profiles, fp16, config)
        return self._m.IHostMemory._make(planfmt.dump_plan(header, graph.model_bytes))


def builder_json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
