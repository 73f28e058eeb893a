"""Builder configuration of the simulated TensorRT: IBuilderConfig, IOptimizationProfile,
ITimingCache and IHostMemory (serialized data: a bytes subclass, so memoryview/bytes/write work).

A timing cache serialized by another release (or any bytes that are not a cache) is what real
TensorRT reports for it: create_timing_cache logs "Error Code 1: Serialization (... Version tag
does not match ...)" then "4: The timing cache will not be used!" and returns an empty cache
(log lines as in NVIDIA/TensorRT issue #3566 and KataGo's TensorRT logs). A cache from a device
of another compute capability is refused by set_timing_cache/combine unless ignore_mismatch.
"""

from __future__ import annotations

from typing import Any

from . import plan as planfmt
from .build import Obj


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
        return [self._m.Dims(s) for s in self._shapes.get(input, [])]

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

    # what bytes offers and the real IHostMemory lacks (it is only a buffer)
    def __bool__(self) -> bool:  # a pybind11 object without __len__ is always true
        return True

    __bool__.__name__ = "_pybind_default_truthiness"
    __len__ = __getitem__ = __iter__ = __contains__ = __add__ = __mul__ = __rmul__ = __mod__ = __rmod__ = None
    __lt__ = __le__ = __gt__ = __ge__ = None
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

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
