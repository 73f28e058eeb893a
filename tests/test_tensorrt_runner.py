"""The cuda-python runner against the doubles: shapes before addresses, real bytes through the
fake device memory, execute_async_v3 on the runner's stream, CUDA-event timing, cleanup."""

from __future__ import annotations

import numpy as np
import pytest

from trt_double import FakeGpu, graphs, install
from trtmake.backends import tensorrt as backend
from trtmake.backends.base import BuildSpec
from trtmake.errors import BuildFailed, UserError
from trtmake.profiles import Profile, ShapeRange

SMALL = Profile("small", {"x": ShapeRange((1, 4), (2, 4), (4, 4))})
LARGE = Profile("large", {"x": ShapeRange((5, 4), (16, 4), (32, 4))})


@pytest.fixture
def engine(monkeypatch, tmp_path):
    """(doubles, engine path) for x[N,4] -> 2*x, built through the backend with two profiles."""
    d = install(monkeypatch, gpu=FakeGpu(exec_ms=[0.5, 1.0, 0.25]))
    spec = BuildSpec(graphs.scale(tmp_path / "m.onnx"), (SMALL, LARGE), {})
    path = backend.build(spec, tmp_path / "work").engine_path
    d.rec.calls.clear()
    return d, path


def test_infer_returns_outputs_computed_on_the_device(engine):
    d, path = engine
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    with backend.load(path, {}) as runner:
        out = runner.infer({"x": x})
    assert list(out) == ["y"] and out["y"].dtype == np.float32
    np.testing.assert_array_equal(out["y"], 2 * x)


def test_infer_call_order_shapes_then_addresses_then_copies_then_execute(engine):
    d, path = engine
    with backend.load(path, {}) as runner:
        runner.infer({"x": np.ones((2, 4), np.float32)})
        stream = runner._stream
    rec = d.rec
    assert rec.args("set_input_shape") == [("x", (2, 4))]
    assert rec.index("set_input_shape") < rec.index("set_tensor_address")
    assert {a[0] for a in rec.args("set_tensor_address")} == {"x", "y"}
    copies = rec.of("cudaMemcpyAsync")
    h2d, d2h = d.cuda.cudaMemcpyKind.cudaMemcpyHostToDevice, d.cuda.cudaMemcpyKind.cudaMemcpyDeviceToHost
    assert [c.args[3] for c in copies] == [h2d, d2h]
    assert all(c.args[4] is stream for c in copies) and [c.args[2] for c in copies] == [32, 32]
    assert rec.args("execute_async_v3") == [(int(stream),)]
    order = [rec.index(m) for m in ("set_tensor_address", "cudaMemcpyAsync", "execute_async_v3")]
    assert order == sorted(order)
    assert rec.index("cudaMemcpyAsync", nth=1) > rec.index("execute_async_v3")
    assert rec.index("cudaStreamSynchronize") > rec.index("cudaMemcpyAsync", nth=1)


def test_exit_frees_every_buffer_event_and_stream(engine):
    d, path = engine
    with backend.load(path, {}) as runner:
        runner.infer({"x": np.ones((2, 4), np.float32)})
        runner.time({"x": np.ones((2, 4), np.float32)}, iters=2, warmup=1)
        assert d.gpu.memory and d.gpu.streams and d.gpu.events
    assert d.gpu.memory == {} and d.gpu.streams == {} and d.gpu.events == {}
    assert len(d.rec.of("cudaFree")) == len(d.rec.of("cudaMalloc"))


def test_time_brackets_each_execute_with_events_and_skips_warmup(engine):
    d, path = engine
    with backend.load(path, {}) as runner:
        times = runner.time({"x": np.ones((2, 4), np.float32)}, iters=3, warmup=2)
        stream = runner._stream
    # the double's device clock advances 0.5, 1.0, 0.25, ... ms per execution (2 warmups first)
    assert times == [0.25, 0.5, 1.0]
    assert d.gpu.executions == 5
    timed = [c.method for c in d.rec.calls if c.method in ("cudaEventRecord", "execute_async_v3")][2:]
    assert timed == ["cudaEventRecord", "execute_async_v3", "cudaEventRecord"] * 3
    assert all(c.args[1] is stream for c in d.rec.of("cudaEventRecord"))
    assert len(d.rec.of("cudaEventCreate")) == 2


def test_buffers_are_reused_and_grown_only_when_needed(engine):
    d, path = engine
    with backend.load(path, {}) as runner:
        runner.infer({"x": np.ones((2, 4), np.float32)})
        runner.infer({"x": np.ones((1, 4), np.float32)})
        assert len(d.rec.of("cudaMalloc")) == 2  # x and y, reused for the smaller batch
        out = runner.infer({"x": np.full((4, 4), 3, np.float32)})
        assert len(d.rec.of("cudaMalloc")) == 4 and len(d.rec.of("cudaFree")) == 2
    np.testing.assert_array_equal(out["y"], np.full((4, 4), 6, np.float32))


def test_second_profile_is_selected_for_shapes_only_it_holds(engine):
    d, path = engine
    with backend.load(path, {}) as runner:
        x = np.ones((20, 4), np.float32)
        np.testing.assert_array_equal(runner.infer({"x": x})["y"], 2 * x)
        runner.infer({"x": np.ones((2, 4), np.float32)})
        stream = int(runner._stream)
    assert d.rec.args("set_optimization_profile_async") == [(1, stream), (0, stream)]
    assert d.rec.index("set_optimization_profile_async") < d.rec.index("set_input_shape")


def test_shape_outside_every_profile_is_a_user_error(engine):
    _, path = engine
    with backend.load(path, {}) as runner:
        with pytest.raises(UserError, match=r"input 'x' shape \[64, 4\] is outside .* widen profile.shapes.x"):
            runner.infer({"x": np.ones((64, 4), np.float32)})


def test_feeds_must_match_the_engine_inputs(engine):
    _, path = engine
    with backend.load(path, {}) as runner:
        with pytest.raises(UserError, match=r"missing \['x'\], unexpected \['z'\]"):
            runner.infer({"z": np.ones((2, 4), np.float32)})


def test_feeds_are_cast_to_the_engine_input_type(engine):
    _, path = engine
    with backend.load(path, {}) as runner:
        out = runner.infer({"x": np.arange(8, dtype=np.int64).reshape(2, 4)})
    np.testing.assert_array_equal(out["y"], 2 * np.arange(8, dtype=np.float32).reshape(2, 4))


def test_runner_outside_its_with_block_refuses_work(engine):
    _, path = engine
    runner = backend.load(path, {})
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        runner.infer({"x": np.ones((2, 4), np.float32)})


def test_engine_from_another_tensorrt_release_fails_to_load_with_the_reason(engine, monkeypatch):
    _, path = engine
    install(monkeypatch, version="11.4.0.106")
    with pytest.raises(BuildFailed, match=r"could not load .*engine built with TensorRT 10.13.3.9"):
        with backend.load(path, {}):
            pass


def test_failed_execute_is_a_build_failure(engine, monkeypatch):
    d, path = engine
    with backend.load(path, {}) as runner:
        monkeypatch.setattr(type(runner._context), "execute_async_v3", lambda self, stream: False)
        with pytest.raises(BuildFailed, match="execute_async_v3 failed"):
            runner.infer({"x": np.ones((2, 4), np.float32)})


def test_runner_uses_the_configured_device(engine):
    d, path = engine
    d.gpu.devices.append(d.gpu.devices[0])
    with backend.load(path, {"device": 1}):
        pass
    assert d.rec.args("cudaSetDevice") == [(1,)]
