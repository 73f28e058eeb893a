"""Runtime side of the simulated TensorRT: Runtime, ICudaEngine, IExecutionContext, EngineInspector.

execute_async_v3 reads the inputs from device memory, runs the engine's ONNX graph with
onnxruntime and writes the outputs to device memory (or through the IOutputAllocator). Device
memory is touched only through Polygraphy's CUDA wrapper (`polygraphy.cuda.wrapper().memcpy`),
so the same code runs on the fake libcudart in CI and on a real GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import plan as planfmt
from .build import Obj
from .graph import NUMPY, Graph
from .inspector import Layer, engine_information, layer_information


class ImplRuntime(Obj):
    def __init__(self, logger: Any) -> None:
        object.__setattr__(self, "_logger", self._s.adopt_logger(self, logger, "createInferRuntime"))
        object.__setattr__(self, "_misc", {})

    logger = property(lambda self: self._logger)
    num_DLA_cores = property(lambda self: 0)
    max_threads = property(lambda self: self._misc.get("max_threads", 1), lambda self, v: self._misc.update(max_threads=v))
    DLA_core = property(lambda self: self._misc.get("DLA_core", -1), lambda self, v: self._misc.update(DLA_core=v))
    engine_host_code_allowed = property(lambda self: self._misc.get("host_code", False),
                                        lambda self, v: self._misc.update(host_code=bool(v)))
    temporary_directory = property(lambda self: self._misc.get("tmp", ""), lambda self, v: self._misc.update(tmp=v))
    tempfile_control_flags = property(lambda self: self._misc.get("tfc", 3), lambda self, v: self._misc.update(tfc=v))
    error_recorder = property(lambda self: None, lambda self, v: None)
    gpu_allocator = property(lambda self: None, lambda self, v: None)

    def deserialize_cuda_engine(self, serialized_engine: Any = None, stream_reader: Any = None,
                                stream_reader_v2: Any = None) -> Any:
        s = self._s
        if serialized_engine is None:
            s.emit(self._logger, "ERROR", "1: [runtime.cpp::deserializeCudaEngine] stream readers are not simulated")
            return None
        try:
            head, model = planfmt.load_plan(bytes(memoryview(serialized_engine)))
        except planfmt.FormatError as exc:
            s.emit(self._logger, "ERROR", f"1: [stdArchiveReader.cpp::StdArchiveReaderInitCommon] Error Code 1: "
                   f"Serialization ({exc})")
            return None
        if head["release"] != s.version and not (
                head["version_compatible"] and head["release"].split(".")[0] == s.version.split(".")[0]
                and _vkey(head["release"]) <= _vkey(s.version)):
            s.emit(self._logger, "ERROR", "1: [stdArchiveReader.cpp::StdArchiveReaderInitCommon] Error Code 1: "
                   "Serialization (Serialization assertion stdVersionRead == kSERIALIZATION_VERSION failed."
                   f"Version tag does not match. Note: Current Version: {s.version}, Serialized Engine Version: "
                   f"{head['release']})")
            return None
        if head["version_compatible"] and not self.engine_host_code_allowed:
            s.emit(self._logger, "ERROR", "1: [runtime.cpp::deserializeCudaEngine] Error Code 1: Internal Error "
                   "(The engine plan file contains host code (a version-compatible engine embeds the lean runtime) "
                   "but host code is not allowed: set IRuntime::setEngineHostCodeAllowed(true).)")
            return None
        cc, built = s.compute_capability(), tuple(head["cc"])
        hw = head["hardware_compatibility_level"]
        compatible = built == cc or (hw in ("AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY") and cc >= (8, 0) and
                                     (hw == "AMPERE_PLUS" or built == cc))
        if not compatible:
            s.emit(self._logger, "ERROR", "1: [runtime.cpp::deserializeCudaEngine] Error Code 1: Internal Error "
                   f"(The engine plan file is generated on an incompatible device, expecting compute "
                   f"{cc[0]}.{cc[1]} got compute {built[0]}.{built[1]}, please rebuild.)")
            return None
        engine = self._m.ICudaEngine._new(_head=head, _graph=Graph(model), _plan=bytes(memoryview(serialized_engine)),
                                          _runtime=self)
        return engine


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class ImplICudaEngine(Obj):
    _head: dict[str, Any]
    _graph: Graph

    def _io(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self._head["io"] if t["name"] == name), None)

    num_io_tensors = property(lambda self: len(self._head["io"]))
    num_layers = property(lambda self: len(self._head["layers"]))
    num_optimization_profiles = property(lambda self: len(self._head["profiles"]))
    name = property(lambda self: "Unnamed Network 0")
    device_memory_size = property(lambda self: max(self._head["device_memory"]))
    device_memory_size_v2 = property(lambda self: max(self._head["device_memory"]))
    profiling_verbosity = property(lambda self: self._m.ProfilingVerbosity[self._head["profiling_verbosity"]])
    hardware_compatibility_level = property(
        lambda self: self._m.HardwareCompatibilityLevel[self._head["hardware_compatibility_level"]])
    engine_capability = property(lambda self: self._m.EngineCapability.STANDARD)
    has_implicit_batch_dimension = property(lambda self: False)
    refittable = property(lambda self: False)
    num_aux_streams = property(lambda self: 0)
    streamable_weights_size = property(lambda self: 0)
    weight_streaming_scratch_memory_size = property(lambda self: 0)
    minimum_weight_streaming_budget = property(lambda self: 0)
    weight_streaming_budget = property(lambda self: 0, lambda self, v: None)
    weight_streaming_budget_v2 = property(lambda self: 0, lambda self, v: None)
    tactic_sources = property(lambda self: 0)
    error_recorder = property(lambda self: None, lambda self, v: None)

    def get_tensor_name(self, index: int) -> Any:
        io = self._head["io"]
        return io[index]["name"] if 0 <= index < len(io) else None

    def get_tensor_mode(self, name: str) -> Any:
        t = self._io(name)
        return self._m.TensorIOMode[t["mode"]] if t else self._m.TensorIOMode.NONE

    def get_tensor_dtype(self, name: str) -> Any:
        t = self._io(name)
        return self._m.DataType[t["dtype"]] if t else self._m.DataType.FLOAT

    def get_tensor_shape(self, name: str) -> Any:
        t = self._io(name)
        return self._m.Dims(t["shape"]) if t else self._m.Dims(())

    def get_tensor_location(self, name: str) -> Any:
        return self._m.TensorLocation.DEVICE

    def get_tensor_format(self, name: str, profile_index: int = 0) -> Any:
        return self._m.TensorFormat.LINEAR

    def get_tensor_format_desc(self, name: str, profile_index: int = 0) -> str:
        t = self._io(name)
        return f"Row major linear {t['dtype'] if t else ''} format"

    def get_tensor_vectorized_dim(self, name: str, profile_index: int = 0) -> int:
        return -1

    def get_tensor_bytes_per_component(self, name: str, profile_index: int = 0) -> int:
        t = self._io(name)
        return np.dtype(NUMPY.get(t["dtype"], np.float32)).itemsize if t else -1

    def get_tensor_components_per_element(self, name: str, profile_index: int = 0) -> int:
        return 1

    def is_shape_inference_io(self, name: str) -> bool:
        return False

    def is_debug_tensor(self, name: str) -> bool:
        return False

    def get_aliased_input_tensor(self, name: str) -> Any:
        return None

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Any]:
        t = self._io(name)
        if t is None or t["mode"] != "INPUT" or not 0 <= profile_index < self.num_optimization_profiles:
            self._s.emit(self._runtime._logger, "ERROR", f"3: [engine.cpp::getProfileShape] Error Code 3: API Usage "
                         f"Error (Parameter check failed, condition: profileIndex and input tensor {name} valid)")
            return [self._m.Dims._invalid() for _ in range(3)]  # nbDims == -1, as getProfileShape returns
        return [self._m.Dims(s) for s in self._head["profiles"][profile_index][name]]

    def get_device_memory_size_for_profile(self, profile_index: int) -> int:
        return self._head["device_memory"][profile_index]

    def get_device_memory_size_for_profile_v2(self, profile_index: int) -> int:
        return self._head["device_memory"][profile_index]

    def get_weight_streaming_automatic_budget(self) -> int:
        return 0

    def get_engine_stat(self, stat: Any = None) -> int:
        return sum(i.ByteSize() for i in self._graph.initializers.values())

    def serialize(self) -> Any:
        return self._m.IHostMemory._make(self._plan)

    def create_execution_context(self, strategy: Any = None, runtime_config: Any = None) -> Any:
        user_managed = strategy is not None and strategy.name == "USER_MANAGED"
        ctx = self._m.IExecutionContext._new(_engine=self, _shapes={}, _addresses={}, _allocators={}, _profile=0,
                                             _device_memory=0, _user_managed=user_managed, _misc={})
        for t in self._head["io"]:
            if t["mode"] == "INPUT" and -1 not in t["shape"]:
                ctx._shapes[t["name"]] = tuple(t["shape"])
        return ctx

    def create_execution_context_without_device_memory(self) -> Any:
        return self.create_execution_context(self._m.ExecutionContextAllocationStrategy.USER_MANAGED)

    def create_engine_inspector(self) -> Any:
        return self._m.EngineInspector._new(_engine=self, _context=None)

    def _layers(self) -> list[Layer]:
        return [Layer(la["name"], la["type"], [tuple(x) for x in la["inputs"]], [tuple(x) for x in la["outputs"]],
                      la["vectorized"]) for la in self._head["layers"]]

    def _shapes_for_inspector(self) -> dict[str, tuple[int, ...]]:
        from onnx import shape_inference

        out: dict[str, tuple[int, ...]] = {}
        try:
            inferred = shape_inference.infer_shapes(self._graph.model).graph
        except Exception:
            return out
        for vi in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
            out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
        return out


class ImplEngineInspector(Obj):
    _engine: Any

    execution_context = property(lambda self: self._context,
                                 lambda self, v: object.__setattr__(self, "_context", v))
    error_recorder = property(lambda self: None, lambda self, v: None)

    def _detailed(self) -> bool:
        return self._engine._head["profiling_verbosity"] in ("DETAILED", "VERBOSE")

    def get_engine_information(self, format: Any) -> str:
        e = self._engine
        if format.name == "ONELINE":
            return "\n".join(la.name for la in e._layers())
        return engine_information(e._head, e._layers(), self._s.major, self._detailed(), e._shapes_for_inspector())

    def get_layer_information(self, layer_index: int, format: Any) -> str:
        layers = self._engine._layers()
        if not 0 <= layer_index < len(layers):
            return ""
        if format.name == "ONELINE":
            return layers[layer_index].name
        return layer_information(layers[layer_index], self._s.major, self._detailed(),
                                 self._engine._shapes_for_inspector())
