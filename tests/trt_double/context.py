"""IExecutionContext of the simulated TensorRT: shapes, profiles, addresses and execution.

execute_async_v3 copies each input from device memory with Polygraphy's CUDA wrapper, runs the
ONNX graph on onnxruntime, and copies each output back: into the address set with
set_tensor_address, or into memory from the output's IOutputAllocator (reallocate_output_async,
else reallocate_output, then notify_shape) as TensorRT does for data-dependent shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .build import Obj
from .graph import NUMPY


def _cuda() -> Any:
    from polygraphy import cuda

    return cuda


class ImplIExecutionContext(Obj):
    _engine: Any
    _shapes: dict[str, tuple[int, ...]]
    _addresses: dict[str, int]
    _allocators: dict[str, Any]
    _profile: int
    _misc: dict[str, Any]

    engine = property(lambda self: self._engine)
    active_optimization_profile = property(lambda self: self._profile)
    name = property(lambda self: self._misc.get("name", ""), lambda self, v: self._misc.update(name=v))
    debug_sync = property(lambda self: self._misc.get("debug_sync", False), lambda self, v: self._misc.update(debug_sync=v))
    device_memory = property(None, lambda self, v: object.__setattr__(self, "_device_memory", int(v)))
    profiler = property(lambda self: self._misc.get("profiler"), lambda self, v: self._misc.update(profiler=v))
    error_recorder = property(lambda self: None, lambda self, v: None)
    enqueue_emits_profile = property(lambda self: True, lambda self, v: None)
    persistent_cache_limit = property(lambda self: 0, lambda self, v: None)
    nvtx_verbosity = property(lambda self: self._engine.profiling_verbosity, lambda self, v: None)
    temporary_allocator = property(lambda self: None, lambda self, v: None)
    unfused_tensors_debug_state = property(lambda self: False, lambda self, v: None)
    all_shape_inputs_specified = property(lambda self: True)

    @property
    def all_binding_shapes_specified(self) -> bool:
        return all(t["name"] in self._shapes for t in self._inputs())

    def _inputs(self) -> list[dict[str, Any]]:
        return [t for t in self._engine._head["io"] if t["mode"] == "INPUT"]

    def _error(self, msg: str) -> None:
        self._s.emit(self._engine._runtime._logger, "ERROR", msg)

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        if not 0 <= profile_index < self._engine.num_optimization_profiles:
            self._error(f"3: [executionContext.cpp::setOptimizationProfileInternal] Error Code 3: API Usage Error "
                        f"(Parameter check failed, condition: profileIndex >= 0 && profileIndex < "
                        f"mEngine.getNbOptimizationProfiles(). profileIndex: {profile_index})")
            raise RuntimeError("Error in set optimization profile async.")
        object.__setattr__(self, "_profile", int(profile_index))
        for t in self._inputs():  # changing the profile invalidates dynamic input shapes
            if -1 in t["shape"]:
                self._shapes.pop(t["name"], None)
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
        t = next((t for t in self._inputs() if t["name"] == name), None)
        shape = tuple(int(d) for d in shape)
        if t is None:
            self._error(f"3: [executionContext.cpp::setInputShape] Error Code 3: API Usage Error (Parameter check "
                        f"failed, condition: engineDims.nbDims >= 0. Tensor {name} is not an input)")
            return False
        lo, _, hi = self._engine._head["profiles"][self._profile][name]
        if len(shape) != len(t["shape"]) or any(not a <= d <= b for a, d, b in zip(lo, shape, hi)):
            self._error(f"3: [executionContext.cpp::setInputShape] Error Code 3: API Usage Error (Parameter check "
                        f"failed, condition: satisfyProfile. Set dimension {list(shape)} for tensor {name} does not "
                        f"satisfy any optimization profiles. Valid range for profile {self._profile}: "
                        f"{list(lo)}..{list(hi)}.)")
            return False
        self._shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> Any:
        io = self._engine._io(name)
        if io is None:
            return self._m.Dims((-1,))
        if io["mode"] == "INPUT":
            return self._m.Dims(self._shapes.get(name, io["shape"]))
        if not self.all_binding_shapes_specified:
            return self._m.Dims(io["shape"])
        return self._m.Dims(self._output_shapes()[name])

    def _output_shapes(self) -> dict[str, tuple[int, ...]]:
        key = tuple(sorted(self._shapes.items()))
        return self._engine._graph.output_shapes(key)

    def infer_shapes(self) -> list[str]:
        return [t["name"] for t in self._inputs() if t["name"] not in self._shapes]

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if self._engine._io(name) is None:
            self._error(f"3: [executionContext.cpp::setTensorAddress] Error Code 3: API Usage Error (Given tensor "
                        f"name: {name} is not found in the engine.)")
            return False
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def get_tensor_strides(self, name: str) -> Any:
        shape = tuple(self.get_tensor_shape(name))
        strides, acc = [], 1
        for d in reversed(shape):
            strides.insert(0, acc)
            acc *= max(d, 1)
        return self._m.Dims(strides)

    def set_output_allocator(self, name: str, output_allocator: Any) -> bool:
        io = self._engine._io(name)
        if io is None or io["mode"] != "OUTPUT":
            return False
        self._allocators[name] = output_allocator
        return True

    def get_output_allocator(self, name: str) -> Any:
        return self._allocators.get(name)

    def get_max_output_size(self, name: str) -> int:
        io = self._engine._io(name)
        return 0 if io is None else 1 << 20

    def set_device_memory(self, memory: int, size: int) -> None:
        object.__setattr__(self, "_device_memory", int(memory))

    def update_device_memory_size_for_shapes(self) -> int:
        return self._engine._head["device_memory"][self._profile]

    def set_all_tensors_debug_state(self, flag: bool) -> bool:
        return True

    def set_tensor_debug_state(self, name: str, flag: bool) -> bool:
        return True

    def get_debug_state(self, name: str) -> bool:
        return False

    def set_debug_listener(self, listener: Any) -> bool:
        self._misc["debug_listener"] = listener
        return True

    def get_debug_listener(self) -> Any:
        return self._misc.get("debug_listener")

    def report_to_profiler(self) -> bool:
        return True

    def set_input_consumed_event(self, event: int) -> bool:
        return True

    def get_input_consumed_event(self) -> int:
        return 0

    def set_aux_streams(self, aux_streams: Any) -> None:
        pass

    def execute_async_v3(self, stream_handle: int) -> bool:
        cuda = _cuda()
        wrapper = cuda.wrapper()
        missing = [t["name"] for t in self._inputs() if t["name"] not in self._shapes]
        if missing:
            self._error(f"3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter check "
                        f"failed, condition: mContext.profileObliviousBindings.at(profileObliviousIndex) || "
                        f"getPtrOrNull(mOutputAllocators, profileObliviousIndex). Neither address or allocator is set "
                        f"for input tensor {missing[0]}; its shape is not set either.)")
            return False
        if self._user_managed and not self._device_memory and self.update_device_memory_size_for_shapes():
            self._error("3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter check failed, "
                        "condition: mContextMemory != nullptr. The execution context was created with "
                        "ExecutionContextAllocationStrategy.USER_MANAGED and no device memory was set.)")
            return False
        feeds = {}
        for t in self._inputs():
            name, shape = t["name"], self._shapes[t["name"]]
            ptr = self._addresses.get(name, 0)
            host = np.empty(shape, dtype=NUMPY[t["dtype"]])
            if host.nbytes and not ptr:
                self._error(f"3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter check "
                            f"failed, condition: address of input tensor {name} is set)")
                return False
            if host.nbytes:
                wrapper.memcpy(host.ctypes.data, ptr, host.nbytes, cuda.MemcpyKind.DeviceToHost, stream_handle)
            feeds[name] = host
        results = self._engine._graph.run(feeds)
        for t in self._engine._head["io"]:
            if t["mode"] != "OUTPUT":
                continue
            name = t["name"]
            value = np.ascontiguousarray(results[name], dtype=NUMPY[t["dtype"]])
            allocator = self._allocators.get(name)
            if allocator is not None:
                realloc = getattr(allocator, "reallocate_output_async", None)
                current = self._addresses.get(name, 0)
                if realloc is not None:
                    ptr = realloc(name, current, value.nbytes, 256, stream_handle)
                else:
                    ptr = allocator.reallocate_output(name, current, value.nbytes, 256)
                ptr = int(ptr or 0)
                if value.nbytes and not ptr:
                    self._error(f"1: [executionContext.cpp::enqueueV3] Error Code 1: Cuda Runtime (output allocator "
                                f"returned nullptr for {name})")
                    return False
                self._addresses[name] = ptr
            else:
                ptr = self._addresses.get(name, 0)
                expected = self._output_shapes().get(name, ())
                if -1 in expected:
                    self._error(f"3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Output tensor "
                                f"{name} has a data-dependent shape: set an IOutputAllocator for it)")
                    return False
                if value.nbytes and not ptr:
                    self._error(f"3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter "
                                f"check failed, condition: address of output tensor {name} is set)")
                    return False
            if value.nbytes:
                wrapper.memcpy(ptr, value.ctypes.data, value.nbytes, cuda.MemcpyKind.HostToDevice, stream_handle)
            if allocator is not None:
                allocator.notify_shape(name, self._m.Dims(value.shape))
        if stream_handle:
            wrapper.stream_synchronize(stream_handle)
        return True
