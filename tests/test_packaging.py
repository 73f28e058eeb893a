"""The install extras: the base install has no GPU packages; each TensorRT extra brings TensorRT,
the CUDA runtime of the same CUDA major, and Polygraphy (no cuda-python, whose major could differ)."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements(extra: str | None = None) -> dict[str, Requirement]:
    items = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    return {Requirement(r).name: Requirement(r) for r in items}


def test_base_install_has_no_gpu_packages():
    names = requirements()
    assert not [n for n in names if n.startswith(("tensorrt", "nvidia", "cuda", "torch", "polygraphy"))]


def test_each_tensorrt_extra_pins_one_cuda_major():
    for extra, trt_name, runtime_name, major in (("tensorrt", "tensorrt-cu12", "nvidia-cuda-runtime-cu12", 12),
                                                 ("tensorrt-cu13", "tensorrt-cu13", "nvidia-cuda-runtime", 13)):
        reqs = requirements(extra)
        assert set(reqs) == {trt_name, runtime_name, "polygraphy"}, extra
        runtime = reqs[runtime_name].specifier
        assert Version(f"{major}.0") in runtime and Version(f"{major}.9") in runtime
        assert Version(f"{major - 1}.9") not in runtime and Version(f"{major + 1}.0") not in runtime
        trt = reqs[trt_name].specifier
        assert Version("10.12.0") not in trt and Version("10.13.3.9") in trt and Version("11.4.0.106") in trt
