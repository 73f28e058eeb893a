"""Fake TensorRT runtime side: engine, inspector, execution context, runtime."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .fake_base import NP, PLAN_MAGIC, RULES, Env, ILogger, Recorded
from .fake_enums import DataType, LayerInformationFormat, Severity, TensorIOMode


# -- runtime, engine, context -------------------------------------------------------------------
class EngineInspector(Recorded):
    def __init__(self, env: Env, plan: dict[str, Any]) -> None:
        object.__setattr__(self, "_env", env)
        self._plan = plan

    def get_engine_information(self, format: LayerInformationFormat) -> str:  # noqa: A002
        self._call("get_engine_information", format)
        layers = self._plan["layers"]
        if format == LayerInformationFormat.JSON:
            return json.dumps({"Layers": layers, "Bindings": [t["name"] for t in self._plan["io"]]})
        return "\n".join(layer if isinstance(layer, str) else layer["Name"] for layer in layers)


class ICudaEngine(Recorded):
    def __init__(self, env: Env, plan: dict[str, Any]) -> None:
        object.__setattr__(self, "_env", env)
        self._plan = plan
        self._io = {t["name"]: t for t in plan["io"]}

    @property
    def num_io_tensors(self) -> int:
        return len(self._plan["io"])

    def get_tensor_name(self, index: int) -> str:
        return self._plan["io"][index]["name"]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode[self._io[name]["mode"]]

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[self._io[name]["dtype"]]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._io[name]["shape"])

    @property
    def num_optimization_profiles(self) -> int:
        return max(1, len(self._plan["profiles"]))

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        return [tuple(s) for s in self._plan["profiles"][profile_index][name]]

    @property
    def num_layers(self) -> int:
        return len(self._plan["layers"])

    def create_execution_context(self) -> "IExecutionContext":
        self._call("create_execution_context")
        return IExecutionContext(self._env, self)

    def create_engine_inspector(self) -> EngineInspector:
        self._call("create_engine_inspector")
        return EngineInspector(self._env, self._plan)


class IExecutionContext(Recorded):
    _FIELDS = ("active_optimization_profile",)

    def __init__(self, env: Env, engine: ICudaEngine) -> None:
        object.__setattr__(self, "_env", env)
        self._engine, self._shapes, self._addresses = engine, {}, {}
        self.active_optimization_profile = 0

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        self._call("set_optimization_profile_async", profile_index, stream_handle)
        self.active_optimization_profile = profile_index
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
        shape = tuple(int(d) for d in shape)
        self._call("set_input_shape", name, shape)
        profiles = self._engine._plan["profiles"]
        if profiles:
            lo, _, hi = profiles[self.active_optimization_profile][name]
            if len(shape) != len(lo) or not all(a <= d <= b for d, a, b in zip(shape, lo, hi, strict=False)):
                return False
        elif shape != self._engine.get_tensor_shape(name):
            return False
        self._shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        self._call("get_tensor_shape", name)
        if name in self._shapes:
            return self._shapes[name]
        first = next(t["name"] for t in self._engine._plan["io"] if t["mode"] == "INPUT")
        return self._shapes.get(first, self._engine.get_tensor_shape(name))  # outputs follow input 0

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._call("set_tensor_address", name, memory)
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses[name]

    def execute_async_v3(self, stream_handle: int) -> bool:
        self._call("execute_async_v3", stream_handle)
        gpu, io = self._env.gpu, self._engine._plan["io"]
        inputs = [t for t in io if t["mode"] == "INPUT"]
        if any(t["name"] not in self._addresses for t in io) or any(t["name"] not in self._shapes for t in inputs):
            return False
        src = inputs[0]
        if self._env.real_cuda is not None:
            return self._execute_on_real_gpu(src, int(stream_handle))
        x = np.frombuffer(gpu.read(self._addresses[src["name"]], _nbytes(src, self._shapes[src["name"]])),
                          dtype=NP[src["dtype"]]).reshape(self._shapes[src["name"]])
        for out in (t for t in io if t["mode"] == "OUTPUT"):
            y = RULES[self._env.rule](x).astype(NP[out["dtype"]])
            gpu.write(self._addresses[out["name"]], y.tobytes())
        gpu.run_on_stream(int(stream_handle))
        return True


    def _execute_on_real_gpu(self, src: dict[str, Any], stream: int) -> bool:
        """Identity on a real GPU: device-to-device copies of input 0 into every output."""
        rt = self._env.real_cuda
        nbytes = _nbytes(src, self._shapes[src["name"]])
        for out in (t for t in self._engine._plan["io"] if t["mode"] == "OUTPUT"):
            err, = rt.cudaMemcpyAsync(self._addresses[out["name"]], self._addresses[src["name"]], nbytes,
                                      rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream)
            if int(err):
                return False
        return True


def _nbytes(tensor: dict[str, Any], shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(NP[tensor["dtype"]]).itemsize


class Runtime(Recorded):
    _PROPS = ("engine_host_code_allowed",)

    def __init__(self, logger: ILogger) -> None:
        object.__setattr__(self, "engine_host_code_allowed", False)
        self._logger = logger
        self._call("Runtime", logger)

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
        data = bytes(serialized_engine)
        self._call("deserialize_cuda_engine", len(data))
        if not data.startswith(PLAN_MAGIC):
            self._logger.log(Severity.ERROR, "IRuntime::deserializeCudaEngine: not an engine")
            return None
        plan = json.loads(data[len(PLAN_MAGIC):])
        if plan["trt"] != self._env.version:
            self._logger.log(Severity.ERROR, f"engine built with TensorRT {plan['trt']}")
            return None
        return ICudaEngine(self._env, plan)
