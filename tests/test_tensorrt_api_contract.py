"""API contract: every TensorRT name the backend (and the test double) uses must exist in the
real bindings of each release the backend claims (SUPPORTED_RELEASES).

The inventories (tests/data/trt_api/tensorrt-<version>.names.gz) list every identifier token of
the compiled bindings; a name is present if it equals a token or is the suffix of one.

Which attribute names count as TensorRT names: every `ast.Attribute.attr` in the backend's
tensorrt*.py modules, except
  - dunders (`__init__`; `__version__` lives in the tensorrt package's Python __init__ on 10.x),
  - attributes read off our own objects (receivers spelt as in OWN_RECEIVERS) or off imported
    non-TensorRT modules (np, os, json, ...: receivers bound by an import statement),
  - CUDA runtime names (prefix "cuda"; the functions called must exist in the fake libcudart),
  - attributes of the Python and numpy types the code handles (dir() of PYTHON_TYPES).
A misspelt or removed TensorRT name is none of these, so it is checked.
"""

from __future__ import annotations

import ast
import bisect
import functools
import gzip
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest

from trt_double import FakeCudart, make_tensorrt
from trt_double.api import signatures
from trtmake.backends import tensorrt as backend

REPO = Path(__file__).resolve().parents[1]
TRT_API = REPO / "tests" / "data" / "trt_api"
BACKEND_MODULES = sorted((REPO / "trtmake" / "backends" / "tensorrt").glob("*.py"))
# our objects (the runner/backend itself, its options, BuildSpec, Profile, ShapeRange), Polygraphy's
# (`pg` is polygraphy.backend.trt, `self._runner`/`runner` a TrtRunner, `array` a DeviceArray) and
# Python logging's (`log` a Logger, `record` a LogRecord, `collect` our handler)
OWN_RECEIVERS = {"self", "self.opts", "backend", "opts", "options", "spec", "profile", "rng",
                 "pg", "pg_profile", "self._runner", "runner", "array", "log", "record", "collect"}
PYTHON_TYPES = (str, bytes, list, dict, tuple, set, int, float, Path, re.Match, OSError, os.stat_result,
                type(hashlib.sha256()), np.ndarray, np.dtype)
DOUBLE_RELEASES = {"10.13": "10.13.3.9", "11.4": "11.4.0.106"}


class Inventory:
    def __init__(self, path: Path) -> None:
        with gzip.open(path, "rt") as f:
            self.tokens = set(f.read().split())
        self._sorted_reversed = sorted(t[::-1] for t in self.tokens)

    def __contains__(self, name: str) -> bool:
        """Equal to a token or the suffix of one (tokens are stored as reversed strings)."""
        if name in self.tokens:
            return True
        rev = name[::-1]
        i = bisect.bisect_left(self._sorted_reversed, rev)
        return i < len(self._sorted_reversed) and self._sorted_reversed[i].startswith(rev)


@functools.lru_cache(maxsize=None)
def inventory(release: str) -> Inventory:
    files = sorted(TRT_API.glob(f"tensorrt-{release}.*.names.gz"))
    assert files, f"no inventory for TensorRT {release} in {TRT_API}"
    return Inventory(files[-1])


def python_names() -> set[str]:
    return {n for t in PYTHON_TYPES for n in dir(t)}


def trt_names_used(sources: dict[str, str]) -> dict[str, set[str]]:
    """TensorRT attribute names used by each module source (see the module docstring)."""
    skip = python_names()
    result = {}
    for module, source in sources.items():
        tree = ast.parse(source)
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    target = alias.name if isinstance(node, ast.Import) else (node.module or "")
                    if not target.startswith("tensorrt"):
                        imported.add(bound)
        names = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr, receiver = node.attr, node.value
            if attr.startswith("__") or attr.startswith("cuda") or attr in skip:
                continue
            if dotted(receiver) in (OWN_RECEIVERS | imported):
                continue
            names.add(attr)
        result[module] = names
    return result


def dotted(node: ast.AST) -> str | None:
    """"a.b.c" for a chain of names, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def missing_names(used: dict[str, set[str]], releases=backend.SUPPORTED_RELEASES,
                  gated=backend.VERSION_GATED) -> dict[str, list[str]]:
    """{release: sorted names absent from its inventory}; gated names only for their releases."""
    all_used = set().union(*used.values()) if used else set()
    report = {}
    for release in releases:
        inv = inventory(release)
        report[release] = sorted(n for n in all_used if (n not in gated or release in gated[n]) and n not in inv)
    return report


def backend_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in BACKEND_MODULES}


# -- the backend ---------------------------------------------------------------------------------
def test_every_supported_release_has_an_inventory():
    assert backend.SUPPORTED_RELEASES == ("10.13", "11.4")
    for release in backend.SUPPORTED_RELEASES:
        assert len(inventory(release).tokens) > 10_000


def test_backend_uses_only_names_present_in_every_supported_release():
    report = missing_names(trt_names_used(backend_sources()))
    assert report == {r: [] for r in backend.SUPPORTED_RELEASES}, f"TensorRT names missing: {report}"


def test_checker_sees_the_tensorrt_api_the_backend_uses():
    used = set().union(*trt_names_used(backend_sources()).values())
    core = {"create_builder_config", "MemoryPoolType", "WORKSPACE", "ProfilingVerbosity", "DETAILED",
            "HardwareCompatibilityLevel", "TilingOptimizationLevel", "create_timing_cache", "set_timing_cache",
            "get_timing_cache", "combine", "serialize", "Builder", "create_engine_inspector",
            "get_engine_information", "LayerInformationFormat", "device_memory_size_v2",
            "num_optimization_profiles", "num_io_tensors", "get_tensor_name", "get_tensor_mode", "TensorIOMode",
            "INPUT", "get_tensor_profile_shape", "num_inputs", "get_input", "is_shape_tensor"}
    assert core <= used, f"checker no longer sees {sorted(core - used)}"


def test_version_gated_names_are_used_and_gated_to_supported_releases():
    used = set().union(*trt_names_used(backend_sources()).values())
    for name, releases in backend.VERSION_GATED.items():
        assert name in used and set(releases) <= set(backend.SUPPORTED_RELEASES)


def test_checker_catches_names_the_real_bindings_lack():
    source = (
        "import tensorrt as trt\n"
        "def run(context, config, engine, stream):\n"
        "    context.execute_async_v2([0, 0], stream)\n"
        "    shape = context.get_binding_shape(0)\n"
        "    config.int8_calibrator = None\n"
        "    config.set_flag(trt.BuilderFlag.FP16)\n"
        "    return np.empty(shape), self.opts.workspace_mb\n"
    )
    report = missing_names(trt_names_used({"bad.py": source}), gated={})
    assert report == {"10.13": ["execute_async_v2", "get_binding_shape"],
                      "11.4": ["execute_async_v2", "get_binding_shape", "int8_calibrator"]}


def test_gating_limits_a_name_to_its_releases():
    used = {"m.py": {"int8_calibrator"}}
    assert missing_names(used, gated={"int8_calibrator": ("10.13",)}) == {"10.13": [], "11.4": []}
    assert missing_names(used, gated={}) == {"10.13": [], "11.4": ["int8_calibrator"]}


# -- the simulator ----------------------------------------------------------------------------------------------
def simulator_public_names(mod) -> set[str]:
    """Public names of the simulated module: module attributes, class members, enum members."""
    from trt_double.api import Absent

    names = set()
    for attr, value in vars(mod).items():
        if attr.startswith("_"):
            continue
        names.add(attr)
        if isinstance(value, type):
            names |= set(getattr(value, "__members__", {}))
            for cls in value.__mro__:
                if cls.__module__ == "builtins" or cls.__module__.startswith("enum"):
                    continue
                names |= {n for n, v in vars(cls).items() if not n.startswith("_") and not isinstance(v, Absent)
                          and hasattr(value, n)}
    return names


@pytest.mark.parametrize("release", sorted(DOUBLE_RELEASES))
def test_simulator_exposes_only_names_of_its_release(release):
    names = simulator_public_names(make_tensorrt(DOUBLE_RELEASES[release]))
    python_layer = set(signatures(DOUBLE_RELEASES[release])["python_layer"]["functions"])  # tensorrt/__init__.py
    assert len(names) > 300
    assert sorted(n for n in names if n not in inventory(release) and n not in python_layer) == []


def test_simulator_differs_between_releases_like_the_bindings():
    ten, eleven = make_tensorrt("10.13.3.9"), make_tensorrt("11.4.0.106")
    assert "int8_calibrator" in simulator_public_names(ten) and "int8_calibrator" not in simulator_public_names(eleven)
    assert "EXPLICIT_BATCH" in ten.NetworkDefinitionCreationFlag.__members__
    assert "EXPLICIT_BATCH" not in eleven.NetworkDefinitionCreationFlag.__members__


def test_fake_libcudart_has_every_cuda_function_the_backend_calls():
    called = {node.func.attr for source in backend_sources().values() for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr.startswith("cuda")}
    missing = sorted(n for n in called if not callable(getattr(FakeCudart, n, None)))
    assert missing == [], f"the backend calls CUDA functions the fake libcudart lacks: {missing}"
