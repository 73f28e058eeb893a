"""Runners' memory() and throughput(streams=N): onnxruntime for real, TensorRT through the
simulator (tests/trt_double), where device memory and contexts come from the engine's API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import trt_models
from trt_double import install
from trtmake.backends.base import BuildSpec
from trtmake.backends.onnxruntime import OnnxruntimeBackend, OrtOptions, OrtRunner, weight_bytes
from trtmake.backends.tensorrt import TensorRTBackend, TrtOptions
from trtmake.errors import BuildFailed
from trtmake.profiles import Profile, ShapeRange

MB = float(1 << 20)
FEEDS = {"input": np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)}


@pytest.fixture
def ort_engine(tmp_path) -> Path:
    model = trt_models.conv_relu(tmp_path / "model.onnx")
    spec = BuildSpec(model, (), OrtOptions(graph_optimization_level="basic"))
    (tmp_path / "work").mkdir()
    return OnnxruntimeBackend().build(spec, tmp_path / "work").engine_path


def test_ort_memory_reports_file_weights_and_first_run_growth(ort_engine):
    with OrtRunner(ort_engine, OrtOptions()) as runner:
        before = runner.memory()
        assert before["activation_mb"] is None  # nothing has run: nothing measured
        measured = runner.memory(FEEDS)  # runs once to measure
    assert measured["engine_file_mb"] == pytest.approx(ort_engine.stat().st_size / MB)
    assert measured["weights_mb"] == pytest.approx(weight_bytes(onnx.load(str(ort_engine))) / MB)
    assert 0 < measured["weights_mb"] <= measured["engine_file_mb"]
    assert measured["activation_mb"] is not None and measured["activation_mb"] >= 0


def test_ort_throughput_counts_samples_over_every_stream(ort_engine, monkeypatch):
    calls = []
    with OrtRunner(ort_engine, OrtOptions()) as runner:
        one = runner.throughput(FEEDS, 1, iters=20)
        real_open = runner._open

        def spy_open(options):
            calls.append(options.intra_op_num_threads)
            return real_open(options)

        monkeypatch.setattr(runner, "_open", spy_open)
        monkeypatch.setattr("os.cpu_count", lambda: 8)
        two = runner.throughput(FEEDS, 2, iters=21)
        timed = runner.throughput(FEEDS, 3, seconds=0.2)
    assert one > 0 and two > 0 and timed > 0
    assert calls == [4, 2]  # 8 cores shared by 2 streams, then by 3 (rounded down)


def test_ort_throughput_runs_the_asked_number_of_executions(ort_engine):
    with OrtRunner(ort_engine, OrtOptions()) as runner:
        runs, elapsed = runner.throughput_impl(FEEDS, 3, 10, None)
        assert runs == 10 and elapsed > 0
        runs, elapsed = runner.throughput_impl(FEEDS, 2, None, 0.1)
        assert runs >= 2 and elapsed >= 0.1


def test_ort_throughput_failure_in_a_stream_is_a_build_failure(ort_engine):
    with OrtRunner(ort_engine, OrtOptions()) as runner:
        with pytest.raises(BuildFailed, match="failed to run"):
            runner.throughput({"input": np.ones((2, 5, 8, 8), np.float32)}, 2, iters=4)


@pytest.mark.parametrize("kwargs", [{}, {"iters": 3, "seconds": 1.0}, {"iters": 0}, {"seconds": -1.0}])
def test_throughput_needs_one_positive_budget(ort_engine, kwargs):
    with OrtRunner(ort_engine, OrtOptions()) as runner, pytest.raises(ValueError):
        runner.throughput(FEEDS, 1, **kwargs)


@pytest.mark.parametrize("streams", [0, -2, True, 1.5])
def test_throughput_needs_a_positive_stream_count(ort_engine, streams):
    with OrtRunner(ort_engine, OrtOptions()) as runner, pytest.raises(ValueError, match="streams"):
        runner.throughput(FEEDS, streams, iters=2)


def test_memory_outside_the_with_block_is_refused(ort_engine):
    runner = OrtRunner(ort_engine, OrtOptions())
    with pytest.raises(RuntimeError, match="memory"):
        runner.memory()


# -- TensorRT (simulated) -----------------------------------------------------------------------
TWO_PROFILES = (Profile("small", {"input": ShapeRange((1, 3, 8, 8), (1, 3, 8, 8), (2, 3, 8, 8))}),
                Profile("large", {"input": ShapeRange((3, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))}))


@pytest.fixture(params=["10.13.3.9", "11.4.0.106"])
def trt_engine(request, monkeypatch, tmp_path) -> tuple[Path, object]:
    sim = install(monkeypatch, version=request.param, cuda="fake")
    model = trt_models.conv_relu(tmp_path / "model.onnx")
    result = TensorRTBackend().build(BuildSpec(model, TWO_PROFILES, TrtOptions()), tmp_path / "work")
    return result.engine_path, sim


def test_trt_memory_comes_from_the_engine(trt_engine):
    path, _ = trt_engine
    with TensorRTBackend().load(path, TrtOptions()) as runner:
        measured = runner.memory()
        engine = runner._engine
        per_profile = [engine.get_device_memory_size_for_profile_v2(i) / MB for i in range(2)]
        assert measured["activation_mb"] == pytest.approx(engine.device_memory_size_v2 / MB)
        assert measured["activation_mb_per_profile"] == pytest.approx(per_profile)
        assert measured["activation_mb"] == pytest.approx(max(per_profile))
        has_stat = hasattr(runner._trt, "EngineStat")
    assert measured["engine_file_mb"] == pytest.approx(path.stat().st_size / MB)
    # TOTAL_WEIGHTS_SIZE is an engine statistic of TensorRT 11 only
    assert (measured["weights_mb"] is not None) == has_stat
    if has_stat:
        assert measured["weights_mb"] > 0


def test_trt_throughput_runs_one_context_per_stream_on_the_matching_profile(trt_engine, monkeypatch):
    path, _ = trt_engine
    feeds = {"input": np.ones((4, 3, 8, 8), np.float32)}  # only the second profile holds batch 4
    with TensorRTBackend().load(path, TrtOptions()) as runner:
        engine = runner._engine
        made = []
        create = type(engine).create_execution_context

        def spy_create(self, *args, **kwargs):
            made.append(create(self, *args, **kwargs))
            return made[-1]

        monkeypatch.setattr(type(engine), "create_execution_context", spy_create)
        runs, elapsed = runner.throughput_impl(feeds, 3, 7, None)
        rate = runner.throughput(feeds, 2, seconds=0.05)
        profiles = [context.active_optimization_profile for context in made]
    assert len(made) == 3 + 2 and profiles == [1] * 5
    assert runs == 9 and elapsed > 0  # whole rounds of 3: 7 executions asked, 9 done
    assert rate > 0
