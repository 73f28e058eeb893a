"""The runner's CUDA path on real cuda-python and a real GPU, where one is visible.

TensorRT itself is still the double (its native libraries are not available to us); what runs
for real is every cuda-python call of the backend: device facts, buffers, host<->device copies,
the stream handle given to execute_async_v3 (a device-to-device copy here), CUDA events.
Skipped on machines without cuda-python or without a CUDA device (CI).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from trt_double import Device, FakeGpu, graphs, make_tensorrt
from trtmake.backends import tensorrt as backend
from trtmake.backends.base import BuildSpec
from trtmake.profiles import Profile, ShapeRange

rt = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python not installed")
_err, _count = rt.cudaGetDeviceCount()
pytestmark = pytest.mark.skipif(int(_err) != 0 or not _count, reason="no CUDA device visible")


@pytest.fixture
def real(monkeypatch):
    _, prop = rt.cudaGetDeviceProperties(0)
    name = prop.name.split(b"\0", 1)[0].decode()
    trt = make_tensorrt("10.13.3.9", FakeGpu(devices=[Device(name, prop.major, prop.minor)]), real_cuda=rt)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return name, prop


def test_probe_and_fingerprint_read_the_real_gpu(real):
    name, prop = real
    ok, reason = backend.probe()
    assert ok and reason == f"TensorRT 10.13.3 on {name} (sm_{prop.major}{prop.minor})"
    fp = backend.fingerprint({})
    assert fp["gpu"] == name and fp["compute_capability"] == f"{prop.major}.{prop.minor}"
    assert fp["cuda_runtime"].split(".")[0] in ("12", "13") and fp["cuda_driver"] != "unknown"


def test_runner_moves_real_bytes_and_times_with_real_events(real, tmp_path):
    profile = Profile("p", {"x": ShapeRange((1, 4), (64, 4), (4096, 4))})
    engine = backend.build(BuildSpec(graphs.scale(tmp_path / "m.onnx"), (profile,), {}), tmp_path / "w").engine_path
    x = np.random.default_rng(0).standard_normal((1000, 4)).astype(np.float32)
    with backend.load(engine, {}) as runner:
        out = runner.infer({"x": x})
        np.testing.assert_array_equal(out["y"], x)  # identity on the GPU: bytes went there and back
        big = np.ones((4096, 4), np.float32)
        np.testing.assert_array_equal(runner.infer({"x": big})["y"], big)  # buffers grew
        times = runner.time({"x": x}, iters=20, warmup=3)
    assert len(times) == 20 and all(0.0 <= t < 1000.0 for t in times)
