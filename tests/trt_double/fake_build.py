"""Fake TensorRT build side: network, ONNX parser, builder config, profiles, timing cache, builder."""

from __future__ import annotations

import json
from typing import Any

from .fake_base import CACHE_MAGIC, FORMAT, ONNX_TO_TRT, PLAN_MAGIC, Env, ILogger, Recorded
from .fake_enums import (
    BuilderFlag,
    DataType,
    ErrorCode,
    HardwareCompatibilityLevel,
    MemoryPoolType,
    ProfilingVerbosity,
    Severity,
    TilingOptimizationLevel,
)


# -- network and parser -------------------------------------------------------------------------
class ITensor(Recorded):
    _FIELDS = ("name", "shape", "dtype", "is_shape_tensor")

    def __init__(self, env: Env, name: str, shape: tuple[int, ...], dtype: str) -> None:
        object.__setattr__(self, "_env", env)
        self.name, self.shape, self.dtype = name, tuple(shape), DataType[dtype]
        self.is_shape_tensor = False


class INetworkDefinition(Recorded):
    def __init__(self, env: Env, flags: int) -> None:
        object.__setattr__(self, "_env", env)
        self._flags, self._inputs, self._outputs, self._nodes = flags, [], [], []

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    def get_input(self, index: int) -> ITensor:
        return self._inputs[index]

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, index: int) -> ITensor:
        return self._outputs[index]

    @property
    def num_layers(self) -> int:
        return len(self._nodes)


class ParserError:
    def __init__(self, code: ErrorCode, desc: str, node: int, name: str, op: str) -> None:
        self._v = (code, desc, node, name, op)

    def code(self) -> ErrorCode:
        return self._v[0]

    def desc(self) -> str:
        return self._v[1]

    def node(self) -> int:
        return self._v[2]

    def node_name(self) -> str:
        return self._v[3]

    def node_operator(self) -> str:
        return self._v[4]


class OnnxParser(Recorded):
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        object.__setattr__(self, "_errors", [])
        self._network, self._logger = network, logger
        self._call("OnnxParser", network, logger)

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError:
        return self._errors[index]

    def clear_errors(self) -> None:
        self._errors.clear()

    def parse_from_file(self, model: str) -> bool:
        import onnx

        self._call("parse_from_file", model)
        proto = onnx.load(model, load_external_data=False)
        graph = proto.graph
        inits = {t.name for t in graph.initializer}
        for index, node in enumerate(graph.node):
            if node.op_type in self._env.unsupported_ops:
                self._errors.append(ParserError(ErrorCode.UNSUPPORTED_NODE,
                                                f"No importer registered for op: {node.op_type}",
                                                index, node.name, node.op_type))
        net = self._network
        for vi, into in [(v, net._inputs) for v in graph.input if v.name not in inits] + \
                        [(v, net._outputs) for v in graph.output]:
            tt = vi.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
            into.append(ITensor(self._env, vi.name, dims, ONNX_TO_TRT.get(tt.elem_type, "FLOAT")))
        net._nodes = [(n.name or f"node_{i}", n.op_type, list(n.input), list(n.output))
                      for i, n in enumerate(graph.node)]
        net._types = {} if self._errors else _tensor_types(proto)
        return not self._errors


def _tensor_types(proto: Any) -> dict[str, str]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto).graph
    types_ = {}
    for vi in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
        types_[vi.name] = ONNX_TO_TRT.get(vi.type.tensor_type.elem_type, "FLOAT")
    return types_


# -- builder config, profiles, timing cache ---------------------------------------------------------
class IOptimizationProfile(Recorded):
    def __init__(self, env: Env) -> None:
        object.__setattr__(self, "_env", env)
        self._shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002 - real names
        self._call("set_shape", input, tuple(min), tuple(opt), tuple(max))
        self._shapes[input] = (tuple(min), tuple(opt), tuple(max))

    def get_shape(self, input: str) -> list[tuple[int, ...]]:  # noqa: A002
        return list(self._shapes[input])


class IHostMemory(bytes):
    @property
    def nbytes(self) -> int:
        return len(self)


class ITimingCache(Recorded):
    def __init__(self, env: Env, origin: tuple[str, str], entries: set[str]) -> None:
        object.__setattr__(self, "_env", env)
        self._origin, self._entries = origin, set(entries)

    def serialize(self) -> IHostMemory:
        body = {"device": self._origin[0], "trt": self._origin[1], "entries": sorted(self._entries)}
        return IHostMemory(CACHE_MAGIC + json.dumps(body).encode())

    def combine(self, input_cache: "ITimingCache", ignore_mismatch: bool) -> bool:
        self._call("combine", input_cache, ignore_mismatch)
        if input_cache._origin != self._origin and not ignore_mismatch:
            return False
        self._entries |= input_cache._entries
        return True

    def reset(self) -> bool:
        self._entries.clear()
        return True


class IBuilderConfig(Recorded):
    _LABEL = "IBuilderConfig"
    _PROPS = ("builder_optimization_level", "profiling_verbosity", "hardware_compatibility_level",
              "tiling_optimization_level", "max_aux_streams")

    def __init__(self, env: Env) -> None:
        object.__setattr__(self, "_env", env)
        object.__setattr__(self, "_flags", set())
        object.__setattr__(self, "_pools", {})
        object.__setattr__(self, "_profiles", [])
        object.__setattr__(self, "_cache", None)
        for name, value in (("builder_optimization_level", 3),
                            ("profiling_verbosity", ProfilingVerbosity.LAYER_NAMES_ONLY),
                            ("hardware_compatibility_level", HardwareCompatibilityLevel.NONE),
                            ("tiling_optimization_level", TilingOptimizationLevel.NONE),
                            ("max_aux_streams", -1)):
            object.__setattr__(self, name, value)

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        self._call("set_memory_pool_limit", pool, pool_size)
        self._pools[pool] = pool_size

    def get_memory_pool_limit(self, pool: MemoryPoolType) -> int:
        return self._pools.get(pool, 80 << 30)

    def set_flag(self, flag: BuilderFlag) -> None:
        self._call("set_flag", flag)
        self._flags.add(flag)

    def get_flag(self, flag: BuilderFlag) -> bool:
        return flag in self._flags

    def clear_flag(self, flag: BuilderFlag) -> None:
        self._flags.discard(flag)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self._call("add_optimization_profile", profile)
        for lo, opt, hi in profile._shapes.values():
            if not all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=False)):
                return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        data = bytes(serialized_timing_cache)
        self._call("create_timing_cache", data)
        if not data:
            return ITimingCache(self._env, (self._env.device_name, self._env.version), set())
        body = json.loads(data[len(CACHE_MAGIC):])
        return ITimingCache(self._env, (body["device"], body["trt"]), set(body["entries"]))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self._call("set_timing_cache", cache, ignore_mismatch)
        if cache._origin != (self._env.device_name, self._env.version) and not ignore_mismatch:
            return False
        object.__setattr__(self, "_cache", cache)
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        self._call("get_timing_cache")
        return self._cache


class IBuilderConfig10(IBuilderConfig):
    int8_calibrator = None  # implicit INT8 calibration: 10.x only (removed in 11)


# -- builder ------------------------------------------------------------------------------------------
class Builder(Recorded):
    def __init__(self, logger: ILogger) -> None:
        self._logger = logger
        self._call("Builder", logger)

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        self._call("create_network", flags)
        if self._env.major >= 11 and flags:
            self._logger.log(Severity.WARNING, "NetworkDefinitionCreationFlag::kSTRONGLY_TYPED is "
                             "deprecated: networks are always strongly typed")
        return INetworkDefinition(self._env, flags)

    def create_builder_config(self) -> IBuilderConfig:
        self._call("create_builder_config")
        return (IBuilderConfig10 if self._env.major < 11 else IBuilderConfig)(self._env)

    def create_optimization_profile(self) -> IOptimizationProfile:
        self._call("create_optimization_profile")
        return IOptimizationProfile(self._env)

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        self._call("build_serialized_network", network, config)
        env = self._env
        dynamic = [t.name for t in network._inputs if -1 in t.shape]
        if env.fail_build or (dynamic and not config._profiles):
            self._logger.log(Severity.ERROR, "Network has dynamic or shape inputs, but no optimization "
                             "profile has been defined." if not env.fail_build else "Internal build failure")
            return None
        strongly_typed = env.major >= 11 or bool(network._flags & (1 << 1))
        layers = _fuse(network, strongly_typed, config.profiling_verbosity == ProfilingVerbosity.DETAILED)
        if config._cache is not None:
            config._cache._entries |= {f"{layer['LayerType']}:{layer['Name']}" for layer in layers
                                       if isinstance(layer, dict)}
        plan = {"trt": env.version, "device": env.device_name, "rule": env.rule, "layers": layers,
                "io": [{"name": t.name, "mode": "INPUT", "dtype": t.dtype.name, "shape": list(t.shape)}
                       for t in network._inputs]
                + [{"name": t.name, "mode": "OUTPUT", "dtype": t.dtype.name, "shape": list(t.shape)}
                   for t in network._outputs],
                "profiles": [{n: [list(s) for s in v] for n, v in p._shapes.items()} for p in config._profiles]}
        return IHostMemory(PLAN_MAGIC + json.dumps(plan).encode())


def _fuse(network: INetworkDefinition, strongly_typed: bool, detailed: bool) -> list[Any]:
    """Layers after 'fusion': Q/DQ fold into their consumer, Relu into a preceding Conv."""
    producers = {out: op for _, op, _, outs in network._nodes for out in outs}
    layers: list[dict[str, Any]] = []
    for name, op, inputs, outputs in network._nodes:
        if op in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if op == "Relu" and layers and layers[-1]["LayerType"] == "CaskConvolution":
            layers[-1]["Name"] += f" + {name}"
            layers[-1]["Outputs"] = [{"Name": o} for o in outputs]
            continue
        from_dq = any(producers.get(i) == "DequantizeLinear" for i in inputs)
        out_type = network._types.get(outputs[0], "FLOAT") if outputs else "FLOAT"
        dtype = "INT8" if from_dq else (out_type if strongly_typed else "FLOAT")
        layers.append({"Name": name, "LayerType": "CaskConvolution" if op == "Conv" else op,
                       "Inputs": [{"Name": i} for i in inputs if i], "Outputs": [{"Name": o} for o in outputs],
                       "_dtype": dtype})
    for layer in layers:
        fmt = FORMAT[layer.pop("_dtype")]
        for tensor in layer["Outputs"]:
            tensor["Format/Datatype"] = fmt
    return layers if detailed else [layer["Name"] for layer in layers]
