"""The simulator's API is the real bindings' API: every class, method, argument name and count,
property (and whether it is read-only) and enum value it offers is checked against the
signatures extracted from NVIDIA's pybind11 sources (tests/data/trt_api/: 10.13.3 for 10.13.3.9,
11.1 plus the 11.4 name inventory for 11.4.0.106), and calls are refused like pybind11 refuses them."""

from __future__ import annotations

import importlib.util
import inspect

import numpy as np
import pytest

from trt_double import RELEASES, api, install
from trt_double.api import Absent, TrtEnum

INHERITED_FROM_PYTHON = set(dir(bytes)) | set(dir(tuple)) | set(dir(object))


def method_problems(qualname: str, fn, entry) -> list[str]:
    """Does `fn` accept every overload of `entry` by the binding's argument names?"""
    impl = inspect.unwrap(fn)
    params = list(inspect.signature(impl).parameters.values())[1:]  # without self
    names = {p.name for p in params}
    required = {p.name for p in params if p.default is inspect.Parameter.empty}
    problems = []
    if getattr(fn, "__signatures__", None) != api.overloads(entry):
        problems.append(f"{qualname}: calls are not checked against the binding's overloads")
    for sig in api.overloads(entry):
        args = [a["name"] for a in sig["args"]]
        if not set(args) <= names:
            problems.append(f"{qualname}: binding arguments {args} not all accepted by {sorted(names)}")
        if not required <= set(args):
            problems.append(f"{qualname}: requires {sorted(required - set(args))}, which the binding lacks")
    return problems


def class_problems(cls, name: str, sig, inventory) -> list[str]:
    """Members of a simulated class that differ from the real class `name`."""
    if name not in sig["classes"]:
        return [f"{name}: no such class in the bindings"]
    methods, props = api.class_members(sig, name)
    exported = set()
    for enum_name in sig["enums"]:
        if enum_name.startswith(f"{name}.") or (name == "Logger" and enum_name.startswith("ILogger.")):
            exported |= {enum_name.split(".")[-1], *sig["enums"][enum_name]["values"]}
    problems = []
    for attr in sorted(dir(cls)):
        if attr.startswith("_") and attr not in ("__init__", "__bool__", "__len__", "__getitem__", "__enter__"):
            continue
        if attr in INHERITED_FROM_PYTHON and attr not in ("__init__", "__bool__", "__len__", "__getitem__",
                                                           "__enter__"):
            continue
        raw = inspect.getattr_static(cls, attr)
        if isinstance(raw, Absent) or (raw is None and attr.startswith("__")) or \
                getattr(raw, "__name__", "") == "_pybind_default_truthiness":
            continue  # hidden: the bindings lack it
        if attr in props and props[attr].get("static") and not callable(raw):
            continue  # a static read-only value (Dims.MAX_DIMS)
        if inventory is not None and not attr.startswith("_") and attr not in inventory:
            problems.append(f"{name}.{attr}: not in the release's name inventory")
        if isinstance(raw, property):
            if attr not in props:
                problems.append(f"{name}.{attr}: a property the bindings lack" if attr not in methods
                                else f"{name}.{attr}: a method in the bindings, a property here")
            elif (raw.fset is None) != bool(props[attr].get("readonly")):
                problems.append(f"{name}.{attr}: read-only is {raw.fset is None} here, "
                                f"{bool(props[attr].get('readonly'))} in the bindings")
        elif attr in exported:
            continue
        elif callable(raw):
            if attr == "__init__" and cls.__init__.__qualname__.endswith("_no_constructor.<locals>.__init__"):
                if "__init__" in methods:
                    problems.append(f"{name}: constructible in the bindings")
                continue
            if attr not in methods:
                problems.append(f"{name}.{attr}: a method the bindings lack" if attr not in props
                                else f"{name}.{attr}: a property in the bindings, a method here")
                continue
            if attr != "__enter__":
                problems += method_problems(f"{name}.{attr}", raw, methods[attr])
        else:
            problems.append(f"{name}.{attr}: unknown member {raw!r}")
    return problems


def module_problems(mod, sig, inventory) -> list[str]:
    problems = []
    for attr, value in vars(mod).items():
        if attr.startswith("_"):
            continue
        if inventory is not None and attr not in inventory and attr not in sig["functions"]:
            problems.append(f"tensorrt.{attr}: not in the release's name inventory")
        if isinstance(value, type) and issubclass(value, TrtEnum):
            values = {m.name: m.value for m in value.__members__.values()}
            members = {k: v.value for k, v in value.__members__.items()}
            if attr not in sig["enums"] or members != {k: v for k, v in sig["enums"][attr]["values"].items()
                                                       if v is not None}:
                problems.append(f"tensorrt.{attr}: enum members differ from the bindings ({values})")
        elif isinstance(value, type):
            problems += class_problems(value, attr, sig, inventory)
        elif isinstance(value, TrtEnum):
            if sig["attributes"].get(attr, {}).get("py") != f"DataType.{value.name}":
                problems.append(f"tensorrt.{attr}: not the bindings' {sig['attributes'].get(attr)}")
        elif callable(value) and attr not in sig["functions"]:
            problems.append(f"tensorrt.{attr}: a function the bindings lack")
    return problems


@pytest.mark.parametrize("release", RELEASES)
def test_simulator_matches_the_binding_signatures(monkeypatch, release):
    sim = install(monkeypatch, version=release)
    names = api.names(release)
    assert module_problems(sim.trt, api.signatures(release), names) == []
    offered = [k for k, v in vars(sim.trt).items() if isinstance(v, type) and not issubclass(v, TrtEnum)]
    assert {"Builder", "OnnxParser", "IBuilderConfig", "ICudaEngine", "IExecutionContext", "Runtime",
            "EngineInspector", "ITimingCache", "IOptimizationProfile", "ILogger"} <= set(offered)


def test_contract_check_catches_mismatches():
    sig = api.signatures("10.13.3.9")

    class IBuilderConfig:
        def set_flag(self, flg):  # the binding names it "flag"
            pass

        num_optimization_profiles = property(lambda self: 0, lambda self, v: None)  # read-only in the bindings

        def fp16_mode(self):  # gone since TensorRT 8
            pass

    problems = class_problems(IBuilderConfig, "IBuilderConfig", sig, None)
    assert any("set_flag: binding arguments ['flag']" in p for p in problems)
    assert any("num_optimization_profiles: read-only is False" in p for p in problems)
    assert any("fp16_mode: a method the bindings lack" in p for p in problems)
    assert class_problems(IBuilderConfig, "IBuilderConfigs", sig, None) == ["IBuilderConfigs: no such class in the bindings"]


# -- differences between releases -------------------------------------------------------------------------------
def test_enum_values_and_removals_per_release(monkeypatch):
    ten = install(monkeypatch, version="10.13.3.9").trt
    eleven = install(monkeypatch, version="11.4.0.106").trt
    assert int(ten.BuilderFlag.VERSION_COMPATIBLE) == 13 and int(eleven.BuilderFlag.VERSION_COMPATIBLE) == 12
    assert "FP16" in ten.BuilderFlag.__members__ and "FP16" not in eleven.BuilderFlag.__members__
    assert "EXPLICIT_BATCH" in ten.NetworkDefinitionCreationFlag.__members__
    assert "EXPLICIT_BATCH" not in eleven.NetworkDefinitionCreationFlag.__members__
    assert int(ten.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 1
    assert int(eleven.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0
    with pytest.raises(AttributeError):
        eleven.BuilderFlag.FP16  # noqa: B018
    assert hasattr(ten, "IInt8EntropyCalibrator2") is False  # calibrators are not simulated
    config = eleven.Builder(eleven.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        config.int8_calibrator = None
    with pytest.raises(AttributeError):
        eleven.Builder(eleven.Logger()).platform_has_fast_fp16  # noqa: B018


def test_eleven_ignores_strongly_typed_and_types_from_the_graph(monkeypatch):
    trt = install(monkeypatch, version="11.4.0.106").trt
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)  # no flag: strongly typed all the same
    assert network._strongly_typed


# -- pybind11's argument checks -------------------------------------------------------------------------------
@pytest.mark.parametrize("release", RELEASES)
def test_calls_are_refused_like_pybind11(monkeypatch, release):
    trt = install(monkeypatch, version=release).trt
    logger = trt.Logger()
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    bad_calls = [
        lambda: config.set_flag(int(trt.BuilderFlag.DEBUG)),                   # int for an enum
        lambda: config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE),    # too few
        lambda: config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1.5),  # float for size_t
        lambda: config.set_memory_pool_limit(pool=trt.MemoryPoolType.WORKSPACE, size=1),  # wrong keyword
        lambda: config.set_timing_cache(config.create_timing_cache(b"")),     # ignore_mismatch missing
        lambda: builder.create_network(0, 1),                                  # too many
        lambda: trt.Builder(),                                                 # logger missing
        lambda: trt.Builder(object()),                                         # not an ILogger
        lambda: trt.ICudaEngine(),                                             # no constructor
        lambda: builder.create_optimization_profile().set_shape("x", (1,), "2", (3,)),  # str for Dims
    ]
    for call in bad_calls:
        with pytest.raises(TypeError):
            call()
    config.set_memory_pool_limit(pool=trt.MemoryPoolType.WORKSPACE, pool_size=1 << 20)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 20
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, np.int64(2))  # __index__ is fine


@pytest.mark.parametrize("release", RELEASES)
def test_read_only_properties_and_unknown_attributes(monkeypatch, release):
    trt = install(monkeypatch, version=release).trt
    config = trt.Builder(trt.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        config.num_optimization_profiles = 2
    with pytest.raises(AttributeError):
        config.max_workspace_size = 1 << 30  # removed in TensorRT 10
    config.builder_optimization_level = 5
    assert config.builder_optimization_level == 5


def test_module_is_importable_by_spec_and_reports_its_version(monkeypatch):
    install(monkeypatch, version="11.4.0.106")
    import tensorrt

    assert tensorrt.__version__ == "11.4.0.106"
    assert importlib.util.find_spec("tensorrt") is not None
    assert tensorrt.nptype(tensorrt.float16) is np.float16 and tensorrt.volume((2, 3)) == 6


def test_context_managers_warn_as_deprecated(monkeypatch):
    trt = install(monkeypatch, version="10.13.3.9").trt
    with pytest.warns(DeprecationWarning, match="Context managers for TensorRT types are deprecated"):
        with trt.Runtime(trt.Logger()):
            pass


def test_a_subclass_must_call_the_base_init_like_pybind11(monkeypatch):
    trt = install(monkeypatch, version="11.4.0.106").trt

    class Forgetful(trt.ILogger):
        def __init__(self):
            self.messages = []

        def log(self, severity, msg):
            self.messages.append(msg)

    class Careful(Forgetful):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages = []

    with pytest.raises(TypeError, match=r"ILogger.__init__\(\) must be called when overriding __init__"):
        Forgetful()
    assert trt.Builder(Careful()).logger.messages == []
