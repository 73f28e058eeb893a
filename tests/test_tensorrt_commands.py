"""The trtexec and polygraphy commands that reproduce a build (show=trtexec, show=polygraphy).

Each command is checked by the tool's own rules: trtexec's as its C++ sources state them
(TensorRT's samples/common/sampleOptions.cpp and sampleEngines.cpp, ported below), Polygraphy's by
its real argument parser (the `polygraphy run` tool parses the argv we print)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from trtmake.backends.base import BuildSpec
from trtmake.backends.tensorrt.commands import (
    polygraphy_command, polygraphy_shell, trtexec_command, trtexec_shell,
)
from trtmake.backends.tensorrt.options import TrtOptions, parse_options
from trtmake.errors import UserError
from trtmake.profiles import Profile, ShapeRange

ONE = Profile("default", {"x": ShapeRange((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))})
STATIC = Profile("default", {"x": ShapeRange((1, 3, 224, 224), (1, 3, 224, 224), (1, 3, 224, 224))})


# -- trtexec's rules, ported ------------------------------------------------------------------------
def split_name_and_value(s: str) -> tuple[str, str]:
    """sampleOptions.cpp splitNameAndValue: a quoted name ('a:b':v), else split at the last ':'."""
    quoted = s.split("'")
    if len(quoted) != 1:
        if len(quoted) != 3:
            raise ValueError(f"Found invalid number of 's when parsing {s}")
        return quoted[0] + quoted[1], quoted[2][1:]
    name, _, value = s.rpartition(":")
    return name, value


def trtexec_profiles(argv: list[str]) -> list[dict[str, dict[str, tuple[int, ...]]]]:
    """The optimization profiles trtexec builds from argv: [{point: {name: dims}}]."""
    profiles: list[dict[str, dict[str, tuple[int, ...]]]] = [{}]
    for arg in argv:
        if arg.startswith("--profile="):  # opens profile N; they come in order
            if profiles[-1]:
                profiles.append({})
            assert int(arg.split("=", 1)[1]) == len(profiles) - 1
        for point in ("min", "opt", "max"):
            if arg.startswith(f"--{point}Shapes="):
                shapes = {}
                for item in arg.split("=", 1)[1].split(","):
                    name, value = split_name_and_value(item)
                    shapes[name] = () if value == "scalar" else tuple(int(d) for d in value.split("x"))
                profiles[-1][point] = shapes
    return [p for p in profiles if p]


def trtexec_accepts(argv: list[str], inputs: dict[str, tuple[int, ...]]) -> None:
    """What trtexec checks before it builds (sampleOptions.cpp processShapes, sampleEngines.cpp
    setupNetworkAndConfig); `inputs` are the network's input dims, -1 dynamic."""
    profiles = trtexec_profiles(argv)
    dynamic = any(-1 in dims for dims in inputs.values())
    if not dynamic and profiles:
        raise AssertionError("Static model does not take explicit shapes")
    for profile in profiles:
        assert set(profile) == {"min", "opt", "max"}, "give all of minShapes/optShapes/maxShapes"
        for shapes in profile.values():
            for name, dims in shapes.items():
                assert name in inputs, f'Cannot find input tensor with name "{name}"'
                assert len(dims) == len(inputs[name])
                assert all(w in (-1, d) for d, w in zip(dims, inputs[name]))
    for name, dims in inputs.items():
        if -1 in dims:
            assert all(name in p["opt"] for p in profiles), f"no shapes for dynamic input {name}"


def test_dynamic_model_gets_the_dynamic_inputs_shapes_trtexec_accepts():
    spec = BuildSpec(Path("/m/model.onnx"), (ONE,), TrtOptions())
    argv = trtexec_command(spec, "/out/engine.plan", {"x"}, trt_major=10)
    trtexec_accepts(argv, {"x": (-1, 3, 224, 224)})
    assert trtexec_profiles(argv) == [{"min": {"x": (1, 3, 224, 224)}, "opt": {"x": (8, 3, 224, 224)},
                                       "max": {"x": (32, 3, 224, 224)}}]
    assert argv[:5] == ["trtexec", "--onnx=/m/model.onnx", "--saveEngine=/out/engine.plan", "--skipInference",
                        "--stronglyTyped"]


def test_static_model_gets_no_shapes_since_trtexec_refuses_them():
    spec = BuildSpec(Path("m.onnx"), (STATIC,), TrtOptions())
    argv = trtexec_command(spec, "e.plan", set(), trt_major=10)
    trtexec_accepts(argv, {"x": (1, 3, 224, 224)})
    assert not any("Shapes" in a for a in argv)
    with pytest.raises(AssertionError, match="Static model"):  # the rule itself bites
        trtexec_accepts(trtexec_command(spec, "e.plan", {"x"}, trt_major=10), {"x": (1, 3, 224, 224)})


def test_static_inputs_of_a_dynamic_model_are_left_to_the_model():
    profile = Profile("p", {"ids": ShapeRange((1, 8), (4, 64), (8, 128)), "scale": ShapeRange((1,), (1,), (1,))})
    argv = trtexec_command(BuildSpec(Path("m.onnx"), (profile,), TrtOptions()), "e.plan", {"ids"}, trt_major=10)
    trtexec_accepts(argv, {"ids": (-1, -1), "scale": (1,)})
    assert all("scale" not in a for a in argv)


def test_every_option_maps_to_its_flag_and_11x_drops_strongly_typed():
    options = {"workspace_mb": 2048, "builder_optimization_level": 5, "hardware_compatibility_level": "ampere_plus",
               "version_compatible": True, "tiling_optimization_level": "moderate", "max_aux_streams": 0,
               "device": 1}
    argv = trtexec_command(BuildSpec(Path("m.onnx"), (ONE,), parse_options(options)), "e.plan", {"x"}, trt_major=11)
    assert "--stronglyTyped" not in argv
    for flag in ("--memPoolSize=workspace:2048M", "--builderOptimizationLevel=5",
                 "--hardwareCompatibilityLevel=ampere+", "--versionCompatible", "--tilingOptimizationLevel=2",
                 "--maxAuxStreams=0", "--device=1"):
        assert flag in argv
    same_cc = BuildSpec(Path("m.onnx"), (ONE,), parse_options({"hardware_compatibility_level": "same_compute_capability"}))
    assert "--hardwareCompatibilityLevel=sameComputeCapability" in trtexec_command(same_cc, "e.plan", {"x"}, 10)


def test_names_with_colons_are_quoted_and_profiles_numbered_as_trtexec_parses_them():
    p0 = Profile("a", {"input:0": ShapeRange((1, 8), (1, 8), (2, 8)), "a/b.c": ShapeRange((1, 8), (1, 8), (2, 8))})
    p1 = Profile("b", {"input:0": ShapeRange((2, 64), (4, 64), (8, 64)), "a/b.c": ShapeRange((2, 64), (4, 64), (8, 64))})
    argv = trtexec_command(BuildSpec(Path("m.onnx"), (p0, p1), TrtOptions()), "e.plan", {"input:0", "a/b.c"}, trt_major=10)
    trtexec_accepts(argv, {"input:0": (-1, -1), "a/b.c": (-1, -1)})
    assert [a for a in argv if a.startswith("--profile")] == ["--profile=0", "--profile=1"]
    assert trtexec_profiles(argv)[1]["opt"] == {"input:0": (4, 64), "a/b.c": (4, 64)}


def test_a_name_trtexec_cannot_express_is_a_user_error_pointing_to_polygraphy():
    p = Profile("p", {"a,b": ShapeRange((1, 8), (1, 8), (2, 8))})
    with pytest.raises(UserError, match="show=polygraphy"):
        trtexec_command(BuildSpec(Path("m.onnx"), (p,), TrtOptions()), "e.plan", {"a,b"}, trt_major=10)


def test_trtexec_shell_copies_the_pinned_cache_so_trtexec_never_updates_it():
    spec = BuildSpec(Path("m.onnx"), (ONE,), TrtOptions(), timing_cache=Path("/team/timing cache.bin"))
    copy_line, run_line = trtexec_shell(spec, "/out/engine.plan", {"x"}, trt_major=10).splitlines()
    assert shlex.split(copy_line) == ["cp", "/team/timing cache.bin", "/out/timing.cache"]
    argv = shlex.split(run_line)
    assert argv[0] == "trtexec" and "--timingCacheFile=/out/timing.cache" in argv
    assert not any("/team/" in a for a in argv)
    assert len(trtexec_shell(BuildSpec(Path("m.onnx"), (ONE,), TrtOptions()), "e.plan", {"x"}, 10).splitlines()) == 1


# -- Polygraphy's own parser ------------------------------------------------------------------------
def polygraphy_parse(argv: list[str]):
    """Parse argv with Polygraphy's real CLI parser; the `run` tool's parsed TensorRT config args."""
    from polygraphy.tools.args import TrtConfigArgs
    from polygraphy.tools.registry import TOOL_REGISTRY

    assert argv[:2] == ["polygraphy", "run"]
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="tools")
    for tool in TOOL_REGISTRY:
        tool.setup_parser(subparsers)
    args, unknown = parser.parse_known_args(argv[1:])
    assert not unknown, f"polygraphy does not know {unknown}"
    tool = args.subcommand
    tool.parse(args)
    return args, tool.arg_groups[TrtConfigArgs]


def test_polygraphy_parses_the_profiles_and_options_we_print():
    p0 = Profile("a", {"input:0": ShapeRange((1, 8), (1, 8), (2, 8)), "a/b.c": ShapeRange((1, 8), (2, 8), (2, 8))})
    p1 = Profile("b", {"input:0": ShapeRange((2, 64), (4, 64), (8, 64)), "a/b.c": ShapeRange((2, 64), (4, 64), (8, 64))})
    options = {"workspace_mb": 512, "builder_optimization_level": 4, "hardware_compatibility_level": "ampere_plus",
               "version_compatible": True, "max_aux_streams": 2}
    spec = BuildSpec(Path("/m/model.onnx"), (p0, p1), parse_options(options), timing_cache=Path("/team/t.cache"))
    argv = polygraphy_command(spec, "/out/e.plan", {"input:0", "a/b.c"}, trt_major=10)
    args, config = polygraphy_parse(argv)
    assert args.model_file == "/m/model.onnx" and args.save_engine == "/out/e.plan" and args.model_type == "onnx"
    got = [{name: [tuple(s) for s in shapes] for name, shapes in prof.items()} for prof in config.profile_dicts]
    assert got == [{"input:0": [(1, 8), (1, 8), (2, 8)], "a/b.c": [(1, 8), (2, 8), (2, 8)]},
                   {"input:0": [(2, 64), (4, 64), (8, 64)], "a/b.c": [(2, 64), (4, 64), (8, 64)]}]
    assert config.builder_optimization_level == 4 and config.version_compatible and config.max_aux_streams == 2
    assert config.load_timing_cache == "/team/t.cache"
    assert "--strongly-typed" in argv and "--strongly-typed" not in polygraphy_command(spec, "e", {"x"}, trt_major=11)


def test_polygraphy_static_model_has_no_shapes():
    argv = polygraphy_command(BuildSpec(Path("m.onnx"), (STATIC,), TrtOptions()), "e.plan", set(), trt_major=10)
    _, config = polygraphy_parse(argv)
    assert not any(a.startswith("--trt-") and a.endswith("-shapes") for a in argv)
    assert not config.profile_dicts


def test_polygraphy_shell_selects_the_device_by_environment():
    spec = BuildSpec(Path("m.onnx"), (ONE,), parse_options({"device": 2}))
    line = polygraphy_shell(spec, "e.plan", {"x"}, trt_major=10)
    assert line.startswith("CUDA_VISIBLE_DEVICES=2 polygraphy run ")
