"""TensorRT backend against the test double: exact builder configuration per recipe, parser
errors, 10.x vs 11.x behaviour, missing dependencies, probe and fingerprint.

No real TensorRT runs here: the double (tests/trt_double) records calls, and
test_tensorrt_api_contract.py checks that every name used exists in the real bindings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from onnx import TensorProto

from trt_double import Device, FakeGpu, cudaError_t, graphs, install, remove_cuda
from trtmake.backends import tensorrt as backend
from trtmake.backends.base import BuildSpec
from trtmake.errors import BuildFailed, MissingDependency, UserError
from trtmake.profiles import Profile, ShapeRange

V10, V11 = "10.13.3.9", "11.4.0.106"
CONV_PROFILE = Profile("default", {"x": ShapeRange((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))})


def config_calls(doubles) -> list[tuple]:
    """IBuilderConfig calls that configure the build (timing-cache calls are checked apart)."""
    skip = {"create_timing_cache", "set_timing_cache", "get_timing_cache", "add_optimization_profile"}
    return [(c.method, *c.args) for c in doubles.rec.calls if c.obj == "IBuilderConfig" and c.method not in skip]


def build(doubles, tmp_path, onnx_path, options=None, profiles=(CONV_PROFILE,), timing_cache=None):
    spec = BuildSpec(onnx_path, tuple(profiles), dict(options or {}), timing_cache)
    return backend.build(spec, tmp_path / "work")


# -- recipes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("version, flags", [(V10, 1 << 1), (V11, 0)])
def test_fp32_graph_default_options_exact_builder_configuration(monkeypatch, tmp_path, version, flags):
    d = install(monkeypatch, version=version)
    result = build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"))
    trt = d.trt
    assert d.rec.args("create_network") == [(flags,)]
    assert config_calls(d) == [
        ("set:builder_optimization_level", 3),
        ("set:profiling_verbosity", trt.ProfilingVerbosity.DETAILED),
    ]
    assert d.rec.args("set_shape") == [("x", (1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))]
    assert d.rec.args("get_engine_information") == [(trt.LayerInformationFormat.JSON,)]
    assert result.engine_path == tmp_path / "work" / "engine.plan" and result.engine_path.stat().st_size > 0
    assert result.timing_cache_path == tmp_path / "work" / "timing.cache"
    info = result.layer_info
    assert (info["layers_before"], info["layers_after"]) == (2, 1)  # Conv+Relu fused
    assert info["layers"] == [{"name": "conv0 + relu0", "type": "CaskConvolution", "precision": "fp32"}]
    assert info["precisions"] == {"fp32": 1}
    assert isinstance(info["inspector"], dict) and "Layers" in info["inspector"]
    assert result.extra["network_flags"] == flags and result.extra["tensorrt"] == version


def test_fp16_graph_gets_fp16_layers_from_graph_types_not_builder_flags(monkeypatch, tmp_path):
    d = install(monkeypatch)
    result = build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx", TensorProto.FLOAT16))
    assert d.rec.of("set_flag") == []  # no FP16 flag: precision comes from the graph
    assert result.layer_info["precisions"] == {"fp16": 1}


@pytest.mark.parametrize("version", [V10, V11])
def test_int8_qdq_graph_builds_int8_layers_without_calibrator(monkeypatch, tmp_path, version):
    d = install(monkeypatch, version=version)
    result = build(d, tmp_path, graphs.qdq_conv(tmp_path / "m.onnx"))
    assert d.rec.of("set_flag") == [] and d.rec.of("set:int8_calibrator") == []
    info = result.layer_info
    assert info["layers_before"] == 6 and info["layers_after"] == 1  # Q/DQ folded into the conv
    assert info["layers"][0]["precision"] == "int8"


def test_every_option_reaches_the_builder_config(monkeypatch, tmp_path):
    d = install(monkeypatch)
    options = {"workspace_mb": 512, "builder_optimization_level": 5,
               "hardware_compatibility_level": "ampere_plus", "version_compatible": True,
               "tiling_optimization_level": "full", "max_aux_streams": 2, "device": 0,
               "timing_cache": None, "max_builds_per_gpu": 1}  # keys the backend does not read
    build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"), options)
    trt = d.trt
    assert config_calls(d) == [
        ("set_memory_pool_limit", trt.MemoryPoolType.WORKSPACE, 512 << 20),
        ("set:builder_optimization_level", 5),
        ("set:profiling_verbosity", trt.ProfilingVerbosity.DETAILED),
        ("set:hardware_compatibility_level", trt.HardwareCompatibilityLevel.AMPERE_PLUS),
        ("set_flag", trt.BuilderFlag.VERSION_COMPATIBLE),
        ("set:tiling_optimization_level", trt.TilingOptimizationLevel.FULL),
        ("set:max_aux_streams", 2),
    ]
    # a version-compatible engine embeds the lean runtime: loading it needs host code allowed
    assert d.rec.args("set:engine_host_code_allowed", "Runtime") == [(True,)]


def test_same_compute_capability_level(monkeypatch, tmp_path):
    d = install(monkeypatch, version=V11)
    build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"),
          {"hardware_compatibility_level": "same_compute_capability"})
    assert ("set:hardware_compatibility_level", d.trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY) \
        in config_calls(d)


def test_tiling_and_aux_streams_skipped_on_a_release_without_them(monkeypatch, tmp_path):
    d = install(monkeypatch, without=("TilingOptimizationLevel", "tiling_optimization_level", "max_aux_streams"))
    result = build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"),
                   {"tiling_optimization_level": "fast", "max_aux_streams": 1})
    methods = [c[0] for c in config_calls(d)]
    assert "set:tiling_optimization_level" not in methods and "set:max_aux_streams" not in methods
    assert "tiling_optimization_level ignored" in result.log and "max_aux_streams ignored" in result.log


def test_dynamic_profiles_set_min_opt_max_per_input_in_network_order(monkeypatch, tmp_path):
    d = install(monkeypatch)
    small = Profile("small", {"b": ShapeRange((1, 8), (1, 8), (2, 8)), "a": ShapeRange((1, 8), (1, 8), (2, 8))})
    large = Profile("large", {"a": ShapeRange((2, 64), (8, 64), (32, 64)),
                              "b": ShapeRange((2, 64), (8, 64), (32, 64))})
    result = build(d, tmp_path, graphs.add_two(tmp_path / "m.onnx"), profiles=(small, large))
    assert d.rec.args("set_shape") == [
        ("a", (1, 8), (1, 8), (2, 8)), ("b", (1, 8), (1, 8), (2, 8)),
        ("a", (2, 64), (8, 64), (32, 64)), ("b", (2, 64), (8, 64), (32, 64)),
    ]
    assert len(d.rec.of("create_optimization_profile")) == 2
    assert len(d.rec.of("add_optimization_profile")) == 2
    # each profile is complete before it is added
    assert d.rec.index("add_optimization_profile") > d.rec.index("set_shape", nth=1)
    assert d.rec.index("add_optimization_profile", nth=1) > d.rec.index("set_shape", nth=3)
    assert result.extra["profiles"] == 2


def test_profile_for_an_unknown_input_is_a_user_error(monkeypatch, tmp_path):
    d = install(monkeypatch)
    bad = Profile("p", {"x": CONV_PROFILE.shapes["x"], "nope": ShapeRange((1,), (1,), (1,))})
    with pytest.raises(UserError, match=r"profile 'p': unknown inputs \['nope'\]"):
        build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"), profiles=(bad,))
    assert d.rec.of("build_serialized_network") == []


def test_dynamic_input_without_any_profile_is_a_user_error(monkeypatch, tmp_path):
    d = install(monkeypatch)
    with pytest.raises(UserError, match=r"\['x'\] have dynamic dims"):
        build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"), profiles=())


def test_static_graph_needs_no_profile(monkeypatch, tmp_path):
    d = install(monkeypatch)
    result = build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx", batch=1), profiles=())
    assert d.rec.of("add_optimization_profile") == [] and result.extra["profiles"] == 0


def test_inverted_profile_rejected_by_tensorrt_is_a_build_failure(monkeypatch, tmp_path):
    d = install(monkeypatch)
    inverted = Profile("inv", {"x": ShapeRange((8, 3, 8, 8), (4, 3, 8, 8), (1, 3, 8, 8))})
    with pytest.raises(BuildFailed, match="rejected optimization profile 'inv'"):
        build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"), profiles=(inverted,))


# -- parser and build errors --------------------------------------------------------------------------
def test_parser_errors_are_all_reported_with_node_index_name_and_operator(monkeypatch, tmp_path):
    d = install(monkeypatch)
    d.env.unsupported_ops = {"MyPlugin", "OtherPlugin"}
    profile = Profile("p", {n: ShapeRange((1, 16), (2, 16), (4, 16)) for n in ("a", "b")})
    with pytest.raises(BuildFailed) as info:
        build(d, tmp_path, graphs.two_inputs_with_custom_ops(tmp_path / "m.onnx"), profiles=(profile,))
    message = str(info.value)
    assert "m.onnx" in message
    assert "node 1 'plugin_a' (MyPlugin): No importer registered for op: MyPlugin" in message
    assert "node 3 'plugin_b' (OtherPlugin): No importer registered for op: OtherPlugin" in message
    assert d.rec.of("create_builder_config") == [] and d.rec.of("build_serialized_network") == []


def test_failed_build_reports_tensorrt_errors_and_writes_no_engine(monkeypatch, tmp_path):
    d = install(monkeypatch)
    d.env.fail_build = True
    with pytest.raises(BuildFailed, match=r"could not build the engine: \[ERROR\] Internal build failure"):
        build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"))
    assert not (tmp_path / "work" / "engine.plan").exists()


@pytest.mark.parametrize("version", [V10, V11])
def test_11x_gets_no_deprecated_strongly_typed_flag(monkeypatch, tmp_path, version):
    d = install(monkeypatch, version=version)
    result = build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"))
    assert "deprecated" not in result.log
    (flags,) = d.rec.args("create_network")[0]
    if version == V11:
        assert flags == 0
    else:
        assert flags == 1 << int(d.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def test_release_outside_the_contract_is_noted_in_the_log(monkeypatch, tmp_path):
    d = install(monkeypatch, version="10.14.1.48")
    result = build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"))
    assert "10.14.1.48 is not a release trtmake is contract-tested against (10.13, 11.4)" in result.log


def test_build_uses_the_configured_device(monkeypatch, tmp_path):
    d = install(monkeypatch, gpu=FakeGpu(devices=[Device(), Device("NVIDIA L4", 8, 9)]))
    build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"), {"device": 1})
    assert d.rec.args("cudaSetDevice") == [(1,)]
    assert d.rec.index("cudaSetDevice") < d.rec.index("Builder")


# -- options --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    ({"hardware_compatibility_level": "turing"}, r"backend.tensorrt.hardware_compatibility_level: 'turing'"),
    ({"builder_optimization_level": 7}, r"builder_optimization_level: 7 is out of range; allowed 0..5"),
    ({"workspace_mb": 0}, r"workspace_mb: 0 is out of range"),
    ({"max_aux_streams": True}, r"max_aux_streams: expected an integer"),
    ({"tiling_optimization_level": 2}, r"tiling_optimization_level: 2 is not one of none, fast"),
    ({"version_compatible": "yes"}, r"version_compatible: expected true or false"),
])
def test_bad_option_values_are_user_errors_naming_the_key(monkeypatch, tmp_path, options, match):
    d = install(monkeypatch)
    with pytest.raises(UserError, match=match):
        build(d, tmp_path, graphs.conv_relu(tmp_path / "m.onnx"), options)
    assert d.rec.of("Builder") == []


# -- missing dependencies, probe, fingerprint ---------------------------------------------------------------
def test_importing_the_backend_imports_neither_tensorrt_nor_cuda():
    code = ("import sys, trtmake.backends.tensorrt; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorrt', 'cuda')))")
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"


def test_missing_tensorrt_says_how_to_install_in_one_line(monkeypatch, tmp_path):
    install(monkeypatch, with_trt=False)
    calls = [lambda: backend.fingerprint({}),
             lambda: backend.load(tmp_path / "e.plan", {}),
             lambda: backend.build(BuildSpec(tmp_path / "m.onnx", (), {}), tmp_path / "w")]
    for call in calls:
        with pytest.raises(MissingDependency) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and info.value.exit_code == 2
        assert "pip install 'trtmake[tensorrt]' (CUDA 12)" in message
        assert "'trtmake[tensorrt-cu13]' (CUDA 13)" in message


def test_missing_cuda_python_says_how_to_install(monkeypatch, tmp_path):
    install(monkeypatch)
    remove_cuda(monkeypatch)
    with pytest.raises(MissingDependency, match=r"cuda-python is not installed: pip install 'trtmake\[tensorrt\]'"):
        backend.fingerprint({})


def test_old_cuda_python_layout_cuda_cudart_is_used(monkeypatch):
    d = install(monkeypatch, cuda_layout="cudart")
    assert backend.fingerprint({})["gpu"] == "NVIDIA H100 80GB HBM3"
    assert "cudaGetDeviceProperties" in d.rec.methods("cuda")


def test_tensorrt_older_than_10_is_refused(monkeypatch):
    install(monkeypatch, version="8.6.1.6")
    with pytest.raises(MissingDependency, match=r"TensorRT 8.6.1.6 is too old \(trtmake needs >= 10.13\)"):
        backend.fingerprint({})
    assert backend.probe() == (False, "TensorRT 8.6.1.6 is older than 10.13")


@pytest.mark.parametrize("version, reason", [
    (V10, "TensorRT 10.13.3 on NVIDIA H100 80GB HBM3 (sm_90)"),
    (V11, "TensorRT 11.4.0 on NVIDIA H100 80GB HBM3 (sm_90)"),
])
def test_probe_true_names_release_and_gpu(monkeypatch, version, reason):
    install(monkeypatch, version=version)
    assert backend.probe() == (True, reason)


def test_probe_false_reasons(monkeypatch):
    install(monkeypatch, with_trt=False)
    assert backend.probe() == (False, "tensorrt not installed")

    install(monkeypatch, gpu=FakeGpu(devices=[], error=cudaError_t.cudaErrorInsufficientDriver))
    assert backend.probe() == (False, "no CUDA device visible (cudaErrorInsufficientDriver)")

    install(monkeypatch, gpu=FakeGpu(devices=[]))
    assert backend.probe() == (False, "no CUDA device visible (0 devices)")

    install(monkeypatch)
    assert backend.probe(device=3) == (False, "CUDA device 3 not visible (1 device(s))")

    install(monkeypatch)
    remove_cuda(monkeypatch)
    assert backend.probe() == (False, "cuda-python not installed")


def test_probe_survives_a_tensorrt_that_fails_to_load(monkeypatch):
    import types

    broken = types.ModuleType("tensorrt")  # a stub wheel: imports, but without the bindings
    monkeypatch.setitem(sys.modules, "tensorrt", broken)
    ok, reason = backend.probe()
    assert not ok and "does not report a version" in reason


def test_fingerprint_fields(monkeypatch):
    install(monkeypatch, version=V11, gpu=FakeGpu(devices=[Device("NVIDIA L4", 8, 9)],
                                                 runtime_version=13000, driver_version=13010))
    fp = backend.fingerprint({"hardware_compatibility_level": "ampere_plus", "version_compatible": True,
                              "workspace_mb": 1024})
    assert fp == {"tensorrt": "11.4.0.106", "gpu": "NVIDIA L4", "compute_capability": "8.9",
                  "cuda_runtime": "13.0", "cuda_driver": "13.1",
                  "hardware_compatibility_level": "ampere_plus", "version_compatible": "true"}
    assert all(isinstance(v, str) for v in fp.values())


def test_fingerprint_differs_when_only_the_gpu_differs(monkeypatch):
    install(monkeypatch, gpu=FakeGpu(devices=[Device("NVIDIA A100-SXM4-80GB", 8, 0)]))
    a100 = backend.fingerprint({})
    install(monkeypatch)
    h100 = backend.fingerprint({})
    assert {k for k in a100 if a100[k] != h100[k]} == {"gpu", "compute_capability"}


def test_fingerprint_without_a_gpu_is_a_user_error(monkeypatch):
    install(monkeypatch, gpu=FakeGpu(devices=[], error=cudaError_t.cudaErrorNoDevice))
    with pytest.raises(UserError, match=r"needs a visible CUDA GPU .*cudaErrorNoDevice.*backend: onnxruntime"):
        backend.fingerprint({})


def test_module_and_class_implement_the_backend_interface():
    assert backend.name == backend.TensorRTBackend.name == "tensorrt"
    for attr in ("fingerprint", "build", "load"):
        assert callable(getattr(backend, attr)) and callable(getattr(backend.TensorRTBackend(), attr))


def test_build_config_keys_defaults_alike_and_leaves_out_the_device():
    b = backend.TensorRTBackend()
    profiles = (CONV_PROFILE,)
    implicit = b.build_config({}, profiles)
    explicit = b.build_config({"builder_optimization_level": 3, "hardware_compatibility_level": "none",
                               "device": 1, "timing_cache": "team.cache"}, profiles)
    assert implicit == explicit
    assert implicit["profiles"] == {"default": {"x": [[1, 3, 8, 8], [4, 3, 8, 8], [16, 3, 8, 8]]}}
    assert "device" not in implicit["options"]
    assert b.build_config({"workspace_mb": 64}, profiles) != implicit
    with pytest.raises(UserError, match="builder_optimization_level"):
        b.build_config({"builder_optimization_level": -1}, profiles)


def test_select_backend_finds_the_tensorrt_backend(monkeypatch):
    install(monkeypatch)
    from trtmake.backends import select

    chosen, why = select.select_backend("auto")
    assert chosen.name == "tensorrt" and why == "auto: TensorRT 10.13.3 on NVIDIA H100 80GB HBM3 (sm_90)"
