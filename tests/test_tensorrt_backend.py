"""The TensorRT backend through the simulator (tests/trt_double): Polygraphy's real loaders and
TrtRunner drive a `tensorrt` whose API is checked against NVIDIA's binding sources and whose
engines compute the ONNX graph, so these tests check numbers, not just calls."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import trt_models
from trt_double import Device, install
from trtmake.backends import select
from trtmake.backends.base import BaseRunner, BuildSpec
from trtmake.backends.tensorrt import TensorRTBackend, build as trt_build, probe
from trtmake.backends.tensorrt import timing
from trtmake.backends.tensorrt.options import TrtOptions, parse_options
from trtmake.backends.tensorrt.toolchain import import_tensorrt
from trtmake.errors import BuildFailed, MissingDependency, UserError
from trtmake.profiles import Profile, ShapeRange

RELEASES = ["10.13.3.9", "11.4.0.106"]
BATCH = Profile("b", {"input": ShapeRange((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))})


def _visible_gpus() -> int:
    """CUDA devices Polygraphy's real wrapper sees (0 where libcudart or a GPU is missing)."""
    from trtmake.backends.tensorrt import cuda

    try:
        return cuda.device_count()
    except cuda.CudaError:
        return 0


# On a GPU machine the simulator's engines run on real device memory through Polygraphy's real
# CUDA wrapper; elsewhere (CI) the wrapper's libcudart is the simulator's host-memory fake.
CUDA = "real" if _visible_gpus() else "fake"


@pytest.fixture(params=RELEASES)
def sim(request, monkeypatch):
    return install(monkeypatch, version=request.param, cuda=CUDA)


@pytest.fixture
def model(tmp_path) -> Path:
    return trt_models.conv_relu(tmp_path / "model.onnx")


def build(tmp_path, onnx_path, profiles=(BATCH,), options=None, **kw):
    spec = BuildSpec(Path(onnx_path), tuple(profiles), parse_options(options), **kw)
    return TensorRTBackend().build(spec, tmp_path / f"work{len(list(tmp_path.glob('work*')))}")


def spy_config(monkeypatch) -> list:
    """The IBuilderConfig each build creates, read back through the TensorRT API afterwards."""
    seen = []
    make = trt_build.create_config

    def create_config(*args, **kwargs):
        loader = make(*args, **kwargs)

        def call(builder, network):
            config = loader(builder, network)
            seen.append((config, network))
            return config
        return call

    monkeypatch.setattr(trt_build, "create_config", create_config)
    return seen


# -- build ---------------------------------------------------------------------------------------
def test_engine_computes_what_onnxruntime_computes_at_every_batch_of_the_profile(sim, tmp_path, model):
    result = build(tmp_path, model)
    assert result.engine_path.is_file() and result.timing_cache_path.is_file()
    assert result.layer_info["layers_before"] == 4 and result.layer_info["layers_after"] >= 1
    with TensorRTBackend().load(result.engine_path, TrtOptions()) as runner:
        for batch in (1, 2, 4):
            x = np.random.default_rng(batch).standard_normal((batch, 3, 8, 8)).astype(np.float32)
            got = runner.infer({"input": x})
            want = trt_models.onnxruntime_outputs(model, {"input": x})
            assert got["logits"].shape == (batch, 4)
            np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-6)


def test_outputs_of_one_call_survive_the_next(sim, tmp_path, model):
    """TrtRunner reuses its host output buffers; a runner that handed them out would make every
    earlier result equal to the last one."""
    result = build(tmp_path, model)
    xs = [np.full((1, 3, 8, 8), v, np.float32) for v in (0.5, -2.0)]
    with TensorRTBackend().load(result.engine_path, TrtOptions()) as runner:
        first = runner.infer({"input": xs[0]})["logits"]
        runner.infer({"input": xs[1]})
    np.testing.assert_allclose(first, trt_models.onnxruntime_outputs(model, {"input": xs[0]})["logits"], rtol=1e-5)


def test_every_option_reaches_the_builder_config(sim, tmp_path, model, monkeypatch):
    seen = spy_config(monkeypatch)
    trt = sim.trt
    options = {"workspace_mb": 256, "builder_optimization_level": 5, "hardware_compatibility_level": "ampere_plus",
               "version_compatible": True, "tiling_optimization_level": "moderate", "max_aux_streams": 2}
    build(tmp_path, model, options=options)
    (config, network), = seen
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 256 << 20
    assert config.builder_optimization_level == 5
    assert config.hardware_compatibility_level == trt.HardwareCompatibilityLevel.AMPERE_PLUS
    assert config.get_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED
    assert config.tiling_optimization_level == trt.TilingOptimizationLevel.MODERATE
    assert config.max_aux_streams == 2
    assert config.num_optimization_profiles == 1


def test_default_options_leave_tensorrt_defaults(sim, tmp_path, model, monkeypatch):
    seen = spy_config(monkeypatch)
    trt = sim.trt
    build(tmp_path, model)
    (config, _), = seen
    assert config.builder_optimization_level == 3
    assert config.hardware_compatibility_level == trt.HardwareCompatibilityLevel.NONE
    assert not config.get_flag(trt.BuilderFlag.VERSION_COMPATIBLE)


def test_strongly_typed_flag_on_10x_and_never_the_deprecated_flag_on_11x(sim, tmp_path, model, monkeypatch):
    seen = spy_config(monkeypatch)
    result = build(tmp_path, model)
    (_, network), = seen
    if sim.trt.__version__.startswith("10."):
        assert network.get_flag(sim.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        assert result.extra["strongly_typed_flag"] is True
    else:
        assert network.flags == 0 and result.extra["strongly_typed_flag"] is False


def test_parser_errors_name_the_node_and_operator(sim, tmp_path, model):
    sim.unsupported_ops.add("Relu")
    with pytest.raises(BuildFailed, match=r"ONNX parser rejected model.onnx: .*relu.*Relu"):
        build(tmp_path, model)


def test_a_failed_build_reports_tensorrt_s_error(sim, tmp_path, model):
    sim.fail_build = "Internal error: no tactic for conv"
    with pytest.raises(BuildFailed, match="no tactic for conv"):
        build(tmp_path, model)


@pytest.mark.parametrize("profile, match", [
    (Profile("b", {"nope": ShapeRange((1,), (1,), (1,))}), r"input 'nope' is not an input of model.onnx"),
    (Profile("b", {}), r"model.onnx input 'input' \[None, 3, 8, 8\] has dynamic dim\(s\) \[0\]; declare them"),
])
def test_profile_that_does_not_fit_the_network_is_a_user_error(sim, tmp_path, model, profile, match):
    with pytest.raises(UserError, match=match):
        build(tmp_path, model, profiles=(profile,))


def test_inverted_profile_is_a_user_error_before_tensorrt_raises_on_it(sim, tmp_path, model):
    bad = Profile("b", {"input": ShapeRange((4, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8))})
    with pytest.raises(UserError, match="min <= opt <= max"):
        build(tmp_path, model, profiles=(bad,))


def test_static_model_needs_no_profile(sim, tmp_path):
    model = trt_models.conv_relu(tmp_path / "static.onnx", batch=1)
    result = build(tmp_path, model, profiles=())
    x = np.ones((1, 3, 8, 8), np.float32)
    with TensorRTBackend().load(result.engine_path, TrtOptions()) as runner:
        np.testing.assert_allclose(runner.infer({"input": x})["logits"],
                                   trt_models.onnxruntime_outputs(model, {"input": x})["logits"], rtol=1e-5)


# -- runner ----------------------------------------------------------------------------------------
def test_runner_switches_between_profiles_by_the_input_shapes(sim, tmp_path, model):
    small = Profile("small", {"input": ShapeRange((1, 3, 8, 8), (1, 3, 8, 8), (2, 3, 8, 8))})
    large = Profile("large", {"input": ShapeRange((4, 3, 8, 8), (6, 3, 8, 8), (8, 3, 8, 8))})
    result = build(tmp_path, model, profiles=(small, large))
    with TensorRTBackend().load(result.engine_path, TrtOptions()) as runner:
        for batch in (8, 1, 6, 2):
            x = np.random.default_rng(batch).standard_normal((batch, 3, 8, 8)).astype(np.float32)
            np.testing.assert_allclose(runner.infer({"input": x})["logits"],
                                       trt_models.onnxruntime_outputs(model, {"input": x})["logits"], rtol=1e-5)
        with pytest.raises(UserError, match="outside every optimization profile"):
            runner.infer({"input": np.ones((3, 3, 8, 8), np.float32)})


def test_data_dependent_output_shapes_come_back_whole(sim, tmp_path):
    model = trt_models.nonzero(tmp_path / "nz.onnx")
    result = build(tmp_path, model, profiles=(Profile("p", {"x": ShapeRange((1,), (8,), (16,))}),))
    x = np.array([0, 1.5, 0, 2, 3, 0, 0, 4], np.float32)
    with TensorRTBackend().load(result.engine_path, TrtOptions()) as runner:
        got = runner.infer({"x": x})["idx"]
    np.testing.assert_array_equal(got, np.nonzero(x)[0][None, :])


def test_integer_and_float_inputs_keep_their_types(sim, tmp_path):
    model = trt_models.two_inputs(tmp_path / "two.onnx")
    prof = Profile("p", {"ids": ShapeRange((1, 4), (2, 16), (4, 32)), "mask": ShapeRange((1, 4), (2, 16), (4, 32))})
    result = build(tmp_path, model, profiles=(prof,))
    feeds = {"ids": np.arange(32, dtype=np.int64).reshape(2, 16), "mask": np.full((2, 16), 0.5, np.float32)}
    with TensorRTBackend().load(result.engine_path, TrtOptions()) as runner:
        np.testing.assert_allclose(runner.infer(feeds)["y"], np.arange(32).reshape(2, 16) * 0.5)


def test_time_runs_warmup_plus_iters_and_reports_each_step(sim, tmp_path, model):
    result = build(tmp_path, model)
    steps = []
    with TensorRTBackend().load(result.engine_path, TrtOptions()) as runner:
        times = runner.time({"input": np.ones((2, 3, 8, 8), np.float32)}, iters=5, warmup=2,
                            on_step=lambda: steps.append(1))
        with pytest.raises(ValueError, match="iters"):
            runner.time({"input": np.ones((2, 3, 8, 8), np.float32)}, iters=0, warmup=0)
    assert len(times) == 5 and len(steps) == 5 and all(t > 0 for t in times)


def test_runner_checks_its_state_and_its_feeds(sim, tmp_path, model):
    result = build(tmp_path, model)
    runner = TensorRTBackend().load(result.engine_path, TrtOptions())
    assert isinstance(runner, BaseRunner)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        runner.infer({"input": np.ones((1, 3, 8, 8), np.float32)})
    with runner:
        with pytest.raises(UserError, match=r"missing \['input'\]"):
            runner.infer({"x": np.ones((1, 3, 8, 8), np.float32)})
    assert not runner.is_active


def test_an_engine_from_another_compute_capability_is_refused(tmp_path, model, monkeypatch):
    install(monkeypatch, version="10.13.3.9", devices=[Device("NVIDIA H100 80GB HBM3", (9, 0))])
    result = build(tmp_path, model)
    install(monkeypatch, version="10.13.3.9", devices=[Device("NVIDIA A100-SXM4-80GB", (8, 0))])
    with pytest.raises(BuildFailed, match="could not load engine.plan"):
        with TensorRTBackend().load(result.engine_path, TrtOptions()):
            pass


def test_one_tensorrt_logger_per_process(sim, tmp_path, model):
    """TensorRT keeps one logger; build, load and merge all pass Polygraphy's one logger, so the
    simulator (as real TensorRT) never warns that a different logger was passed."""
    first = build(tmp_path, model)
    second = build(tmp_path, model)
    with TensorRTBackend().load(first.engine_path, TrtOptions()) as runner:
        runner.infer({"input": np.ones((1, 3, 8, 8), np.float32)})
    timing.merge_timing_caches(tmp_path / "pinned.cache", [first.timing_cache_path, second.timing_cache_path])
    assert not [m for m in sim.messages("WARNING") if "logger passed into" in m]


# -- timing cache ----------------------------------------------------------------------------------
def test_pinned_cache_is_read_and_a_build_s_cache_merges_into_it(sim, tmp_path, model):
    first = build(tmp_path, model)
    pinned = tmp_path / "team.cache"
    merged = timing.merge_timing_caches(pinned, [first.timing_cache_path])
    assert merged["merged"] == [str(first.timing_cache_path)] and merged["changed"] and pinned.is_file()
    before = pinned.read_bytes()
    second = build(tmp_path, model, timing_cache=pinned)
    assert second.extra["timing_cache"] == "pinned"
    assert pinned.read_bytes() == before  # a build only reads the pinned file


def test_merge_writes_nothing_when_nothing_merged(tmp_path, model, monkeypatch):
    install(monkeypatch, version="11.4.0.106")
    other = build(tmp_path, model)  # a cache of another release
    install(monkeypatch, version="10.13.3.9")
    pinned = tmp_path / "team.cache"
    out = timing.merge_timing_caches(pinned, [other.timing_cache_path])
    assert out["rejected"] == [str(other.timing_cache_path)] and not out["changed"]
    assert not pinned.exists()


def test_pinned_cache_of_another_release_is_not_used_and_said_so(tmp_path, model, monkeypatch):
    install(monkeypatch, version="11.4.0.106")
    other = build(tmp_path, model)
    install(monkeypatch, version="10.13.3.9")
    result = build(tmp_path, model, timing_cache=other.timing_cache_path)
    assert result.extra["timing_cache"] == "pinned-unreadable"
    assert "cannot be read by this TensorRT release" in result.log


def test_pinned_cache_of_another_device_is_used_as_trtexec_uses_it(tmp_path, model, monkeypatch):
    install(monkeypatch, version="10.13.3.9", devices=[Device("NVIDIA A100-SXM4-80GB", (8, 0))])
    a100 = build(tmp_path, model)
    install(monkeypatch, version="10.13.3.9", devices=[Device("NVIDIA H100 80GB HBM3", (9, 0))])
    result = build(tmp_path, model, timing_cache=a100.timing_cache_path)
    assert result.extra["timing_cache"] == "pinned-other-device" and "ignore_mismatch" in result.log


def test_a_missing_pinned_cache_is_a_user_error(sim, tmp_path, model):
    with pytest.raises(UserError, match="does not exist"):
        build(tmp_path, model, timing_cache=tmp_path / "missing.cache")


def test_no_timing_cache_after_a_build_is_a_build_failure():
    class Config:
        def get_timing_cache(self):
            return None

    with pytest.raises(BuildFailed, match="no timing cache"):
        timing.serialize_timing_cache(Config())


# -- toolchain: release gate, fingerprint, probe, selection -----------------------------------------
def test_fingerprint_names_release_gpu_and_platform(sim):
    fp = TensorRTBackend().fingerprint(parse_options({}))
    assert fp["tensorrt"] == sim.trt.__version__ and fp["gpu"].startswith("NVIDIA ")
    assert fp["compute_capability"].count(".") == 1 and fp["os"] and fp["arch"]
    if sim.cuda is not None:
        assert (fp["gpu"], fp["compute_capability"]) == ("NVIDIA H100 80GB HBM3", "9.0")
    assert fp["cuda_runtime"] != "unknown"


def test_fingerprint_differs_by_gpu_and_by_cpu_architecture(monkeypatch):
    install(monkeypatch, devices=[Device("NVIDIA H100 80GB HBM3", (9, 0)), Device("NVIDIA L4", (8, 9))])
    h100, l4 = TensorRTBackend().fingerprint(parse_options({})), TensorRTBackend().fingerprint(parse_options({"device": 1}))
    assert (h100["gpu"], l4["gpu"]) == ("NVIDIA H100 80GB HBM3", "NVIDIA L4") and l4["compute_capability"] == "8.9"
    import platform

    arch = {}
    for machine in ("x86_64", "aarch64"):  # engines do not move between CPU architectures
        monkeypatch.setattr(platform, "machine", lambda machine=machine: machine)
        arch[machine] = TensorRTBackend().fingerprint(parse_options({}))
    assert arch["x86_64"]["arch"] == "x86_64" and arch["aarch64"]["arch"] == "aarch64"
    assert arch["x86_64"] != arch["aarch64"]


def test_a_device_that_is_not_there_is_a_user_error_and_probe_says_which(monkeypatch):
    install(monkeypatch)
    with pytest.raises(UserError, match="device 1"):
        TensorRTBackend().fingerprint(parse_options({"device": 1}))
    ok, why = probe(1)
    assert not ok and "device 1" in why
    assert probe(0) == (True, "TensorRT 10.13.3 on NVIDIA H100 80GB HBM3 (sm_90)")


def test_select_probes_the_configured_device(monkeypatch):
    install(monkeypatch)
    backend, why = select.select_backend("auto", {"tensorrt": {"device": 1}})
    assert backend.name == "onnxruntime" and "device 1" in why
    backend, why = select.select_backend("auto", {"tensorrt": {"device": 0}})
    assert backend.name == "tensorrt" and backend.quantization_dialect == "tensorrt"


def test_releases_before_10_13_are_refused(monkeypatch):
    sim = install(monkeypatch)
    monkeypatch.setattr(sim.trt, "__version__", "10.12.0.36")
    with pytest.raises(MissingDependency, match="too old"):
        import_tensorrt()
    assert probe(0) == (False, "TensorRT 10.12.0.36 is older than 10.13")


def test_missing_tensorrt_says_how_to_install_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependency) as err:
        select.select_backend("tensorrt")
    assert "pip install 'trtmake[tensorrt]'" in str(err.value) and "\n" not in str(err.value)
    assert select.select_backend("auto")[0].name == "onnxruntime"


def test_no_cuda_runtime_means_no_tensorrt_backend(monkeypatch):
    """cuda="real" on a machine without a GPU: Polygraphy finds no usable libcudart."""
    pytest.importorskip("polygraphy")
    from polygraphy.cuda import cuda as pg_cuda

    install(monkeypatch, cuda="real")
    monkeypatch.setattr(pg_cuda, "G_CUDA", None)
    monkeypatch.setenv("LD_LIBRARY_PATH", "")
    monkeypatch.setattr(pg_cuda, "_find_cuda_lib_dirs", lambda: [])
    monkeypatch.setattr(pg_cuda.Cuda, "__init__", _no_libcudart)
    ok, why = probe(0)
    assert not ok and "libcudart could not be loaded" in why


def _no_libcudart(self):
    raise OSError("libcudart.so: cannot open shared object file: No such file or directory")


def test_build_config_keys_defaults_alike_and_leaves_out_the_device():
    backend = TensorRTBackend()
    unset = backend.parse_options({})
    assert backend.build_config(unset, (BATCH,)) == backend.build_config(backend.parse_options(
        {"builder_optimization_level": 3, "device": 1, "timing_cache": None, "max_builds_per_gpu": 2}), (BATCH,))
    assert backend.build_config(backend.parse_options({"workspace_mb": 64}), (BATCH,)) != backend.build_config(
        unset, (BATCH,))
    # the schema leaves every key unset (None): the options class's defaults apply
    assert backend.parse_options({"builder_optimization_level": None, "version_compatible": None}) == unset


def test_importing_the_backend_imports_neither_tensorrt_nor_polygraphy_nor_cuda():
    import subprocess

    code = ("import sys, trtmake.backends.tensorrt, trtmake.stages.build; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorrt', 'polygraphy', 'cuda')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_context_tensorrt_cannot_create_is_a_build_failure_naming_the_engine(sim, tmp_path, model, monkeypatch):
    """create_execution_context returns None when TensorRT cannot allocate the context's memory."""
    result = build(tmp_path, model)
    monkeypatch.setattr(sim.trt.ICudaEngine, "create_execution_context", lambda self, *args, **kwargs: None)
    with pytest.raises(BuildFailed, match="could not load engine.plan"):
        with TensorRTBackend().load(result.engine_path, TrtOptions()):
            pass


def test_a_timing_cache_tensorrt_cannot_create_is_not_used():
    """create_timing_cache may return None (or raise) for bytes it cannot read."""
    class Config:
        def __init__(self):
            self.attached = []

        def create_timing_cache(self, data):
            return None if data else "empty-cache"

        def set_timing_cache(self, cache, ignore_mismatch):
            self.attached.append(cache)
            return True

    config = Config()
    pinned = Path(__file__)  # any readable file: TensorRT refuses its bytes
    status, note = timing.attach_timing_cache(config, pinned)
    assert status == "pinned-unreadable" and "cannot be read" in note and config.attached == ["empty-cache"]
