"""The TensorRT simulator driven by Polygraphy's own TensorRT loaders and TrtRunner, on both releases:
engines compute what onnxruntime computes on the ONNX file, dynamic shapes and profiles behave
as TensorRT's do, and the calls real TensorRT rejects are rejected."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from trt_double import Device, graphs, install

RELEASES = ("10.13.3.9", "11.4.0.106")


@pytest.fixture(params=RELEASES)
def sim(request, monkeypatch):
    return install(monkeypatch, version=request.param)


def reference(onnx_path, feeds):
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def build(onnx_path, profiles=(), **config):
    from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, EngineFromBytes, NetworkFromOnnxPath

    data = EngineBytesFromNetwork(NetworkFromOnnxPath(str(onnx_path)), CreateConfig(profiles=list(profiles), **config))()
    return EngineFromBytes(data)(), data


def batch_profile(name="x", shape=(3, 16, 16), lo=1, opt=2, hi=4):
    from polygraphy.backend.trt import Profile

    return Profile().add(name, (lo, *shape), (opt, *shape), (hi, *shape))


# -- numbers ---------------------------------------------------------------------------------------------
def test_tiny_cnn_gives_onnxruntime_numbers_for_every_batch_in_the_profile(sim, tmp_path):
    from polygraphy.backend.trt import TrtRunner

    path = graphs.tiny_cnn(tmp_path / "cnn.onnx")
    engine, _ = build(path, [batch_profile()])
    rng = np.random.default_rng(1)
    with TrtRunner(engine) as runner:
        for n in (1, 3, 4):
            x = rng.normal(size=(n, 3, 16, 16)).astype(np.float32)
            out = runner.infer({"x": x}, copy_outputs_to_host=True)["y"]
            assert out.shape == (n, 10)
            np.testing.assert_allclose(out, reference(path, {"x": x})["y"], rtol=1e-5, atol=1e-6)
            assert np.abs(out).max() > 0  # real numbers, not zeros


def test_input_outside_the_profile_is_refused(sim, tmp_path):
    from polygraphy.backend.trt import TrtRunner
    from polygraphy.exception import PolygraphyException

    engine, _ = build(graphs.tiny_cnn(tmp_path / "cnn.onnx"), [batch_profile(hi=2)])
    with TrtRunner(engine) as runner, pytest.raises(PolygraphyException):
        runner.infer({"x": np.zeros((3, 3, 16, 16), np.float32)})
    assert any("does not satisfy any optimization profiles" in m for m in sim.messages("ERROR"))


def test_two_profiles_and_switching(sim, tmp_path):
    from polygraphy.backend.trt import TrtRunner

    path = graphs.tiny_cnn(tmp_path / "cnn.onnx")
    engine, _ = build(path, [batch_profile(lo=1, opt=1, hi=2), batch_profile(lo=4, opt=6, hi=8)])
    assert engine.num_optimization_profiles == 2
    assert [tuple(s) for s in engine.get_tensor_profile_shape("x", 1)] == [(4, 3, 16, 16), (6, 3, 16, 16),
                                                                            (8, 3, 16, 16)]
    x = np.random.default_rng(2).normal(size=(6, 3, 16, 16)).astype(np.float32)
    with TrtRunner(engine) as runner:
        runner.set_profile(1)
        assert runner.context.active_optimization_profile == 1
        np.testing.assert_allclose(runner.infer({"x": x})["y"], reference(path, {"x": x})["y"], rtol=1e-5, atol=1e-6)
        runner.set_profile(0)
        np.testing.assert_allclose(runner.infer({"x": x[:2]})["y"], reference(path, {"x": x[:2]})["y"],
                                   rtol=1e-5, atol=1e-6)


def test_data_dependent_output_goes_through_the_output_allocator(sim, tmp_path):
    from polygraphy.backend.trt import TrtRunner

    path = graphs.nonzero(tmp_path / "nz.onnx")
    engine, _ = build(path, [batch_profile(shape=(4,), lo=1, opt=2, hi=4)])
    x = np.array([[1, -1, 2, 0], [0, 3, -2, 5]], np.float32)
    with TrtRunner(engine) as runner:
        runner.context.set_input_shape("x", x.shape)
        assert tuple(runner.context.get_tensor_shape("y")) == (2, -1)  # known only after running
        out = runner.infer({"x": x})["y"]
    np.testing.assert_array_equal(out, reference(path, {"x": x})["y"])
    assert out.shape == (2, 4)


def test_static_engine_and_its_device_memory(sim, tmp_path):
    engine, data = build(graphs.conv_relu(tmp_path / "c.onnx", batch=2))
    assert engine.num_optimization_profiles == 1
    assert engine.device_memory_size_v2 == engine.get_device_memory_size_for_profile_v2(0) > 0
    assert tuple(engine.get_tensor_shape("y")) == (2, 4, 8, 8)
    assert bytes(engine.serialize()) == bytes(data)


# -- failures TensorRT reports ------------------------------------------------------------------------------------
def test_set_optimization_profile_async_raises_on_a_bad_index(sim, tmp_path):
    engine, _ = build(graphs.tiny_cnn(tmp_path / "cnn.onnx"), [batch_profile()])
    context = engine.create_execution_context()
    with pytest.raises(RuntimeError, match="Error in set optimization profile async"):
        context.set_optimization_profile_async(1, 0)
    assert context.set_optimization_profile_async(0, 0) is True


@pytest.mark.parametrize("shapes, which", [
    (((1, 3), (4, 3), (2, 3)), "max"),       # opt > max
    (((2, 3), (1, 3), (4, 3)), "opt"),       # min > opt
    (((1, 3), (1, 3, 1), (1, 3, 1)), "opt"),  # rank mismatch
])
def test_profile_set_shape_raises_on_inconsistent_ranges(sim, shapes, which):
    trt = sim.trt
    profile = trt.Builder(trt.Logger()).create_optimization_profile()
    with pytest.raises(RuntimeError, match=f"Shape provided for {which} is inconsistent"):
        profile.set_shape("x", *shapes)


def test_engine_from_another_compute_capability_is_refused_through_the_logger(monkeypatch, tmp_path):
    sim = install(monkeypatch, version="10.13.3.9", devices=[Device("NVIDIA A100-SXM4-80GB", (8, 0))])
    _, data = build(graphs.conv_relu(tmp_path / "c.onnx", batch=1))
    sim2 = install(monkeypatch, version="10.13.3.9")  # an H100 (9.0)
    trt = sim2.trt
    logged = []

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            logged.append((severity, msg))

    assert trt.Runtime(Logger()).deserialize_cuda_engine(bytes(data)) is None
    assert logged and logged[-1][0] == trt.ILogger.Severity.ERROR
    assert "expecting compute 9.0 got compute 8.0" in logged[-1][1]
    assert sim is not sim2


def test_engine_of_another_release_is_refused(monkeypatch, tmp_path):
    install(monkeypatch, version="10.13.3.9")
    _, data = build(graphs.conv_relu(tmp_path / "c.onnx", batch=1))
    sim = install(monkeypatch, version="11.4.0.106")
    assert sim.trt.Runtime(sim.trt.Logger()).deserialize_cuda_engine(bytes(data)) is None
    assert "Version tag does not match" in sim.messages("ERROR")[-1]


def test_parser_errors_name_the_node(sim, tmp_path):
    trt = sim.trt
    sim.unsupported_ops.add("Relu")
    logger = trt.Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(graphs.conv_relu(tmp_path / "c.onnx"))) is False
    assert parser.num_errors == 1
    error = parser.get_error(0)
    assert (error.node(), error.node_name(), error.node_operator()) == (1, "relu0", "Relu")
    assert error.code() == trt.ErrorCode.UNSUPPORTED_NODE and "Relu" in error.desc()
    assert parser.supports_operator("Relu") is False and parser.supports_operator("Conv") is True


def test_build_failure_switch(sim, tmp_path):
    from polygraphy.exception import PolygraphyException

    sim.fail_build = "2: [builder.cpp::buildSerializedNetwork] Error Code 2: Internal Error (out of memory)"
    with pytest.raises(PolygraphyException):
        build(graphs.conv_relu(tmp_path / "c.onnx", batch=1))
    assert sim.messages("ERROR")[-1] == sim.fail_build


def test_a_second_logger_is_reported_like_tensorrt(sim):
    trt = sim.trt
    first = trt.Logger()
    builder = trt.Builder(first)
    runtime = trt.Runtime(first)  # the same logger: nothing to report
    assert not sim.messages("WARNING")
    trt.Runtime(trt.Logger())
    assert "differs from one already provided" in sim.messages("WARNING")[-1]
    assert builder.logger is first and runtime.logger is first


def test_polygraphy_uses_one_logger(sim, tmp_path):
    from polygraphy.backend.trt import TrtRunner

    engine, _ = build(graphs.conv_relu(tmp_path / "c.onnx", batch=1))
    with TrtRunner(engine) as runner:
        runner.infer({"x": np.ones((1, 3, 8, 8), np.float32)})
    assert not [m for m in sim.messages("WARNING") if "differs from one already provided" in m]


# -- inspector -------------------------------------------------------------------------------------------------
def test_inspector_schema_per_release(sim, tmp_path):
    trt = sim.trt
    engine, _ = build(graphs.tiny_cnn(tmp_path / "cnn.onnx"), [batch_profile()],
                      profiling_verbosity=trt.ProfilingVerbosity.DETAILED)
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    names = [layer["Name"] for layer in info["Layers"]]
    assert "conv1 + relu1" in names and "conv2 + add_residual + relu2" in names
    tensor = info["Layers"][0]["Inputs"][0]
    if sim.trt.__version__.startswith("10."):
        assert info["Bindings"] == ["x", "y"] and "I/O Tensors" not in info
        assert tensor["Format/Datatype"] == "Row major linear FP32"
    else:
        assert "Bindings" not in info
        assert [(t["Name"], t["IOMode"], t["DataType"]) for t in info["I/O Tensors"]] == [
            ("x", "Input", "FP32"), ("y", "Output", "FP32")]
        assert (tensor["Format"], tensor["Datatype"]) == ("Row major linear", "FP32")


def test_inspector_precisions_of_qdq_and_fp16_graphs(sim, tmp_path):
    trt = sim.trt
    detailed = {"profiling_verbosity": trt.ProfilingVerbosity.DETAILED}
    for graph, expected in ((graphs.qdq_conv, {"x_dq + w_q + w_dq + conv0 + relu0": ("INT8", "FLOAT")}),
                            (graphs.fp16_cast_conv, {"conv0 + relu0": ("HALF", "HALF")})):
        kwargs = dict(detailed)
        if trt.__version__.startswith("10."):
            kwargs["strongly_typed"] = True
        from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, EngineFromBytes, NetworkFromOnnxPath

        loader = NetworkFromOnnxPath(str(graph(tmp_path / "g.onnx")), strongly_typed=kwargs.pop("strongly_typed", False))
        engine = EngineFromBytes(EngineBytesFromNetwork(loader, CreateConfig(
            profiles=[batch_profile(shape=(3, 8, 8))], **kwargs)))()
        layers = {la.name: la for la in engine._layers()}
        for name, (inp, out) in expected.items():
            assert (layers[name].inputs[0][1], layers[name].outputs[0][1]) == (inp, out)


def test_names_only_verbosity(sim, tmp_path):
    trt = sim.trt
    engine, _ = build(graphs.conv_relu(tmp_path / "c.onnx", batch=1),
                      profiling_verbosity=trt.ProfilingVerbosity.LAYER_NAMES_ONLY)
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    assert info["Layers"] == ["conv0 + relu0"]


# -- timing cache ---------------------------------------------------------------------------------------------
def test_timing_cache_round_trip_and_mismatch(monkeypatch, tmp_path):
    cache_path = tmp_path / "timing.cache"
    for release in RELEASES:
        sim = install(monkeypatch, version=release)
        trt = sim.trt
        builder = trt.Builder(trt.Logger())
        config = builder.create_builder_config()
        cache = config.create_timing_cache(b"")
        assert config.set_timing_cache(cache, ignore_mismatch=False)
        network = builder.create_network(0)
        trt.OnnxParser(network, builder.logger).parse_from_file(str(graphs.conv_relu(tmp_path / "c.onnx", batch=1)))
        assert builder.build_serialized_network(network, config) is not None
        blob = bytes(config.get_timing_cache().serialize())
        again = config.create_timing_cache(blob)
        assert bytes(again.serialize()) == blob and not sim.messages("ERROR")
        merged = config.create_timing_cache(b"")
        assert merged.combine(again, False) and bytes(merged.serialize()) == blob
        cache_path.write_bytes(blob)
    # the 11.4 simulator reads the cache the 10.13 one wrote: refused, an empty cache instead
    sim = install(monkeypatch, version="11.4.0.106")
    config = sim.trt.Builder(sim.trt.Logger()).create_builder_config()
    old = install(monkeypatch, version="10.13.3.9")
    old_blob = bytes(old.trt.Builder(old.trt.Logger()).create_builder_config().create_timing_cache(b"").serialize())
    empty = config.create_timing_cache(b"")
    foreign = config.create_timing_cache(old_blob)
    assert "Version tag does not match" in sim.messages("ERROR")[-2]
    assert sim.messages("ERROR")[-1] == "4: The timing cache will not be used!"
    assert bytes(foreign.serialize()) == bytes(empty.serialize())  # nothing of it survives
    assert config.set_timing_cache(foreign, True) is False and config.get_timing_cache() is None
    assert empty.combine(foreign, True) is False


def test_timing_cache_from_another_device_needs_ignore_mismatch(monkeypatch):
    a100 = install(monkeypatch, version="11.4.0.106", devices=[Device("NVIDIA A100-SXM4-80GB", (8, 0))])
    blob = bytes(a100.trt.Builder(a100.trt.Logger()).create_builder_config().create_timing_cache(b"").serialize())
    sim = install(monkeypatch, version="11.4.0.106")
    config = sim.trt.Builder(sim.trt.Logger()).create_builder_config()
    cache = config.create_timing_cache(blob)
    assert config.set_timing_cache(cache, False) is False
    assert config.set_timing_cache(cache, True) is True
    assert config.create_timing_cache(b"").combine(cache, False) is False


def test_polygraphy_saves_and_loads_a_timing_cache(sim, tmp_path):
    cache = tmp_path / "t.cache"
    from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath

    EngineBytesFromNetwork(NetworkFromOnnxPath(str(graphs.conv_relu(tmp_path / "c.onnx", batch=1))),
                           CreateConfig(load_timing_cache=str(cache)), save_timing_cache=str(cache))()
    first = cache.read_bytes()
    assert first.startswith(b"SIMTRT-TCACHE")
    EngineBytesFromNetwork(NetworkFromOnnxPath(str(graphs.tiny_cnn(tmp_path / "t.onnx", batch=1))),
                           CreateConfig(load_timing_cache=str(cache)), save_timing_cache=str(cache))()
    assert len(cache.read_bytes()) > len(first) and not sim.messages("ERROR")


# -- compatibility flags, external data, weak typing --------------------------------------------------------------
def test_hardware_compatible_engine_runs_on_another_ampere_plus_device(monkeypatch, tmp_path):
    sim = install(monkeypatch, version="11.4.0.106")
    trt = sim.trt
    path = graphs.conv_relu(tmp_path / "c.onnx", batch=1)
    _, portable = build(path, hardware_compatibility_level=trt.HardwareCompatibilityLevel.AMPERE_PLUS)
    _, native = build(path)
    l4 = install(monkeypatch, version="11.4.0.106", devices=[Device("NVIDIA L4", (8, 9))])
    runtime = l4.trt.Runtime(l4.trt.Logger())
    assert runtime.deserialize_cuda_engine(bytes(portable)) is not None
    assert runtime.deserialize_cuda_engine(bytes(native)) is None


def test_version_compatible_engine_needs_host_code_allowed(sim, tmp_path):
    _, data = build(graphs.conv_relu(tmp_path / "c.onnx", batch=1), version_compatible=True)
    runtime = sim.trt.Runtime(sim.trt.Logger())
    assert runtime.deserialize_cuda_engine(bytes(data)) is None
    assert "host code is not allowed" in sim.messages("ERROR")[-1]
    runtime.engine_host_code_allowed = True  # what Polygraphy's EngineFromBytes does
    assert runtime.deserialize_cuda_engine(bytes(data)) is not None


def test_external_data_is_inlined_into_the_plan(sim, tmp_path):
    import onnx

    from polygraphy.backend.trt import TrtRunner

    src = graphs.tiny_cnn(tmp_path / "cnn.onnx", batch=2)
    model = onnx.load(str(src))
    moved = tmp_path / "ext" / "cnn.onnx"
    moved.parent.mkdir()
    onnx.save(model, str(moved), save_as_external_data=True, location="weights.bin", size_threshold=0)
    engine, _ = build(moved)
    (moved.parent / "weights.bin").unlink()  # the engine no longer needs the file
    x = np.random.default_rng(3).normal(size=(2, 3, 16, 16)).astype(np.float32)
    with TrtRunner(engine) as runner:
        np.testing.assert_allclose(runner.infer({"x": x})["y"], reference(src, {"x": x})["y"], rtol=1e-5, atol=1e-6)


def test_parse_bytes_reads_external_data_beside_the_path(sim, tmp_path):
    import onnx

    trt = sim.trt
    model = onnx.load(str(graphs.tiny_cnn(tmp_path / "cnn.onnx")))
    moved = tmp_path / "ext" / "cnn.onnx"
    moved.parent.mkdir()
    onnx.save(model, str(moved), save_as_external_data=True, location="weights.bin", size_threshold=0)
    logger = trt.Logger()
    network = trt.Builder(logger).create_network(0)
    assert trt.OnnxParser(network, logger).parse(moved.read_bytes(), str(moved)) is True
    assert network.num_layers == 8 and network.get_input(0).name == "x"


def test_ten_weakly_typed_fp16_flag_runs_intermediates_in_half(monkeypatch, tmp_path):
    from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath

    sim = install(monkeypatch, version="10.13.3.9")
    trt = sim.trt
    path = graphs.tiny_cnn(tmp_path / "cnn.onnx")
    config = CreateConfig(fp16=True, profiles=[batch_profile()], profiling_verbosity=trt.ProfilingVerbosity.DETAILED)
    engine = EngineFromNetwork(NetworkFromOnnxPath(str(path)), config)()
    layers = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    first = layers["Layers"][0]
    assert first["Inputs"][0]["Format/Datatype"] == "Row major linear FP32"  # the network input stays fp32
    assert first["Outputs"][0]["Format/Datatype"] == "Row major linear FP16 format"
    strongly = EngineFromNetwork(NetworkFromOnnxPath(str(path), strongly_typed=True),
                                 CreateConfig(fp16=True, profiles=[batch_profile()]))
    with pytest.raises(Exception):
        strongly()  # precision flags and strong typing contradict each other on 10.x
    assert "FP16 is not allowed for a strongly typed network" in sim.messages("ERROR")[-1]


def test_user_managed_context_needs_device_memory(sim, tmp_path):
    from polygraphy import cuda

    trt = sim.trt
    engine, _ = build(graphs.tiny_cnn(tmp_path / "cnn.onnx", batch=2))
    context = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
    x = cuda.DeviceArray.raw((2 * 3 * 16 * 16 * 4,))
    y = cuda.DeviceArray.raw((2 * 10 * 4,))
    x.copy_from(np.ones((2, 3, 16, 16), np.float32))
    assert context.set_tensor_address("x", x.ptr) and context.set_tensor_address("y", y.ptr)
    assert context.execute_async_v3(0) is False
    assert "USER_MANAGED and no device memory was set" in sim.messages("ERROR")[-1]
    scratch = cuda.DeviceArray.raw((engine.device_memory_size_v2,))
    context.set_device_memory(scratch.ptr, engine.device_memory_size_v2)
    assert context.execute_async_v3(0) is True
    out = np.empty((2, 10), np.float32)
    y.view(shape=(2, 10), dtype=np.float32).copy_to(out)
    ref = reference(graphs.tiny_cnn(tmp_path / "cnn.onnx", batch=2), {"x": np.ones((2, 3, 16, 16), np.float32)})
    np.testing.assert_allclose(out, ref["y"], rtol=1e-5, atol=1e-6)
    for array in (x, y, scratch):
        array.free()
