"""The trtexec and polygraphy command lines that build the same engine as `build.build`
(show=trtexec, show=polygraphy): Polygraphy's --gen-script idea, for people who reproduce builds
by hand.

Both tools take explicit shapes only for a model with dynamic inputs, and then only for those
inputs: trtexec refuses shapes for a fully static model ("Static model does not take explicit
shapes", sampleEngines.cpp). trtexec splits `name:dims` at the last ':' unless the name is quoted
('a:b':1x3), and splits the list at commas, so a name with a comma or a quote cannot be given to
it; Polygraphy splits `name:[dims]` at the last ':' too.

trtexec *updates* the file given to --timingCacheFile after a build, so the trtexec lines point
it at a copy next to the engine; the pinned timing cache stays read-only.
"""

from __future__ import annotations

import shlex
from importlib import metadata
from pathlib import Path

from trtmake.backends.base import BuildSpec
from trtmake.backends.tensorrt.options import TILING_LEVELS
from trtmake.errors import UserError

_HARDWARE_TRTEXEC = {"ampere_plus": "ampere+", "same_compute_capability": "sameComputeCapability"}


def installed_major() -> int | None:
    """Major version of the installed TensorRT wheel, read from package metadata (no import)."""
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu13", "tensorrt_cu12"):
        try:
            return int(metadata.version(dist).split(".")[0])
        except (metadata.PackageNotFoundError, ValueError):
            continue
    return None


def timing_cache_copy(engine_out: str) -> str:
    """Where the trtexec command keeps its timing cache: next to the engine."""
    return str(Path(engine_out).with_name("timing.cache"))


def _trtexec_shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    parts = []
    for name, dims in shapes.items():
        if "," in name or "'" in name:
            raise UserError(f"show=trtexec: input name {name!r} holds a comma or a quote, which trtexec's "
                            "--*Shapes cannot express; use show=polygraphy")
        quoted = f"'{name}'" if ":" in name else name
        parts.append(f"{quoted}:{'x'.join(str(d) for d in dims) if dims else 'scalar'}")
    return ",".join(parts)


def trtexec_command(spec: BuildSpec, engine_out: str, dynamic_inputs: set[str],
                    trt_major: int | None = None) -> list[str]:
    """argv for trtexec. `dynamic_inputs`: the model's inputs with a dynamic dim (the only ones
    that take shapes). trt_major picks 10.x vs 11.x flags (default: the installed wheel, else 10)."""
    opts = spec.options
    major = trt_major if trt_major is not None else (installed_major() or 10)
    argv = ["trtexec", f"--onnx={spec.onnx_path}", f"--saveEngine={engine_out}", "--skipInference"]
    if major < 11:
        argv.append("--stronglyTyped")  # 11.x networks are always strongly typed
    if dynamic_inputs:
        for index, profile in enumerate(spec.profiles):
            if len(spec.profiles) > 1:
                argv.append(f"--profile={index}")
            for point in ("min", "opt", "max"):
                shapes = {n: s for n, s in profile.shapes_at(point).items() if n in dynamic_inputs}
                argv.append(f"--{point}Shapes={_trtexec_shapes(shapes)}")
    if opts.workspace_mb is not None:
        argv.append(f"--memPoolSize=workspace:{opts.workspace_mb}M")
    argv.append(f"--builderOptimizationLevel={opts.builder_optimization_level}")
    if opts.hardware_compatibility_level != "none":
        argv.append(f"--hardwareCompatibilityLevel={_HARDWARE_TRTEXEC[opts.hardware_compatibility_level]}")
    if opts.version_compatible:
        argv.append("--versionCompatible")
    if opts.tiling_optimization_level != "none":
        argv.append(f"--tilingOptimizationLevel={TILING_LEVELS.index(opts.tiling_optimization_level)}")
    if opts.max_aux_streams is not None:
        argv.append(f"--maxAuxStreams={opts.max_aux_streams}")
    if opts.device:
        argv.append(f"--device={opts.device}")
    argv.append(f"--timingCacheFile={timing_cache_copy(engine_out)}")
    argv += ["--profilingVerbosity=detailed", f"--exportLayerInfo={Path(engine_out).with_suffix('.layers.json')}"]
    return argv


def trtexec_shell(spec: BuildSpec, engine_out: str, dynamic_inputs: set[str], trt_major: int | None = None) -> str:
    """Printable shell lines: copy the pinned timing cache (if any), then run trtexec."""
    lines = []
    if spec.timing_cache is not None:
        lines.append(shlex.join(["cp", str(spec.timing_cache), timing_cache_copy(engine_out)]))
    lines.append(shlex.join(trtexec_command(spec, engine_out, dynamic_inputs, trt_major)))
    return "\n".join(lines)


def polygraphy_command(spec: BuildSpec, engine_out: str, dynamic_inputs: set[str],
                       trt_major: int | None = None) -> list[str]:
    """argv for `polygraphy run`: builds the engine with the same settings, saves it, and checks
    its outputs against onnxruntime on the same ONNX graph."""
    opts = spec.options
    major = trt_major if trt_major is not None else (installed_major() or 10)
    # cached graphs have no .onnx suffix, from which Polygraphy would guess the model's type
    argv = ["polygraphy", "run", str(spec.onnx_path), "--model-type", "onnx", "--trt", "--onnxrt",
            "--save-engine", engine_out]
    if major < 11:
        argv.append("--strongly-typed")
    if dynamic_inputs:
        for profile in spec.profiles:
            for point in ("min", "opt", "max"):
                shapes = [f"{n}:[{','.join(str(d) for d in s)}]"
                          for n, s in profile.shapes_at(point).items() if n in dynamic_inputs]
                argv += [f"--trt-{point}-shapes", *shapes]
    if opts.workspace_mb is not None:
        argv += ["--pool-limit", f"workspace:{opts.workspace_mb}M"]
    argv += ["--builder-optimization-level", str(opts.builder_optimization_level)]
    if opts.hardware_compatibility_level != "none":
        argv += ["--hardware-compatibility-level", opts.hardware_compatibility_level]
    if opts.version_compatible:
        argv.append("--version-compatible")
    if opts.tiling_optimization_level != "none":
        argv += ["--tiling-optimization-level", opts.tiling_optimization_level]
    if opts.max_aux_streams is not None:
        argv += ["--max-aux-streams", str(opts.max_aux_streams)]
    if spec.timing_cache is not None:
        argv += ["--load-timing-cache", str(spec.timing_cache)]
    argv += ["--profiling-verbosity", "detailed"]
    return argv


def polygraphy_shell(spec: BuildSpec, engine_out: str, dynamic_inputs: set[str], trt_major: int | None = None) -> str:
    device = spec.options.device
    prefix = f"CUDA_VISIBLE_DEVICES={device} " if device else ""
    return prefix + shlex.join(polygraphy_command(spec, engine_out, dynamic_inputs, trt_major))
