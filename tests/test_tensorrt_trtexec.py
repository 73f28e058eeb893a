"""The trtexec command that reproduces a build outside trtmake (show=trtexec)."""

from __future__ import annotations

import shlex
from pathlib import Path

from trtmake.backends.base import BuildSpec
from trtmake.backends.tensorrt import trtexec_command, trtexec_shell
from trtmake.profiles import Profile, ShapeRange

ONE = Profile("default", {"x": ShapeRange((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))})


def test_default_options_10x():
    spec = BuildSpec(Path("/m/model.onnx"), (ONE,), {})
    assert trtexec_command(spec, "/out/engine.plan", trt_major=10) == [
        "trtexec", "--onnx=/m/model.onnx", "--saveEngine=/out/engine.plan", "--skipInference",
        "--stronglyTyped",
        "--minShapes=x:1x3x224x224", "--optShapes=x:8x3x224x224", "--maxShapes=x:32x3x224x224",
        "--builderOptimizationLevel=3",
        "--timingCacheFile=/out/timing.cache",
        "--profilingVerbosity=detailed", "--exportLayerInfo=/out/engine.layers.json",
    ]


def test_every_option_maps_to_its_flag_and_11x_drops_strongly_typed():
    options = {"workspace_mb": 2048, "builder_optimization_level": 5, "hardware_compatibility_level": "ampere_plus",
               "version_compatible": True, "tiling_optimization_level": "moderate", "max_aux_streams": 0,
               "device": 1}
    argv = trtexec_command(BuildSpec(Path("m.onnx"), (ONE,), options), "e.plan", trt_major=11)
    assert "--stronglyTyped" not in argv
    for flag in ("--memPoolSize=workspace:2048M", "--builderOptimizationLevel=5",
                 "--hardwareCompatibilityLevel=ampere+", "--versionCompatible", "--tilingOptimizationLevel=2",
                 "--maxAuxStreams=0", "--device=1"):
        assert flag in argv


def test_same_compute_capability_spelling():
    spec = BuildSpec(Path("m.onnx"), (ONE,), {"hardware_compatibility_level": "same_compute_capability"})
    assert "--hardwareCompatibilityLevel=sameComputeCapability" in trtexec_command(spec, "e.plan", trt_major=10)


def test_several_profiles_are_numbered_and_inputs_with_colons_quoted():
    p0 = Profile("a", {"input:0": ShapeRange((1, 8), (1, 8), (2, 8)), "mask": ShapeRange((1, 8), (1, 8), (2, 8))})
    p1 = Profile("b", {"input:0": ShapeRange((2, 64), (4, 64), (8, 64)), "mask": ShapeRange((2, 64), (4, 64), (8, 64))})
    argv = trtexec_command(BuildSpec(Path("m.onnx"), (p0, p1), {}), "e.plan", trt_major=10)
    shapes = [a for a in argv if a.startswith(("--profile", "--minShapes", "--optShapes", "--maxShapes"))]
    assert shapes == [
        "--profile=0", "--minShapes='input:0':1x8,mask:1x8", "--optShapes='input:0':1x8,mask:1x8",
        "--maxShapes='input:0':2x8,mask:2x8",
        "--profile=1", "--minShapes='input:0':2x64,mask:2x64", "--optShapes='input:0':4x64,mask:4x64",
        "--maxShapes='input:0':8x64,mask:8x64",
    ]


def test_scalar_input_uses_trtexec_scalar_spelling():
    spec = BuildSpec(Path("m.onnx"), (Profile("p", {"t": ShapeRange((), (), ())}),), {})
    assert "--optShapes=t:scalar" in trtexec_command(spec, "e.plan", trt_major=10)


def test_shell_copies_the_pinned_cache_so_trtexec_never_updates_it():
    spec = BuildSpec(Path("m.onnx"), (ONE,), {}, timing_cache=Path("/team/timing cache.bin"))
    copy_line, run_line = trtexec_shell(spec, "/out/engine.plan", trt_major=10).splitlines()
    assert shlex.split(copy_line) == ["cp", "/team/timing cache.bin", "/out/timing.cache"]
    argv = shlex.split(run_line)
    assert argv[0] == "trtexec" and "--timingCacheFile=/out/timing.cache" in argv
    assert not any("/team/" in a for a in argv)


def test_shell_without_pinned_cache_is_one_line():
    assert len(trtexec_shell(BuildSpec(Path("m.onnx"), (ONE,), {}), "e.plan", trt_major=10).splitlines()) == 1
