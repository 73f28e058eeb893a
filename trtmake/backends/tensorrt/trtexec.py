"""The trtexec command line that builds the same engine as `build.build` (show=trtexec).

Pure: reads the BuildSpec only. trtexec *updates* the file given to --timingCacheFile after a
build, so the command points it at a copy next to the engine; `trtexec_shell` prints the copy
step too, which keeps the pinned timing cache read-only as DESIGN.md section 3 requires.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from trtmake.backends.base import BuildSpec
from trtmake.backends.tensorrt.options import TILING_LEVELS, parse_options

_HARDWARE_FLAG = {"ampere_plus": "ampere+", "same_compute_capability": "sameComputeCapability"}


def installed_major() -> int | None:
    """Major version of the installed TensorRT wheel, read from package metadata (no import)."""
    from importlib import metadata

    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu13", "tensorrt_cu12"):
        try:
            return int(metadata.version(dist).split(".")[0])
        except (metadata.PackageNotFoundError, ValueError):
            continue
    return None


def timing_cache_copy(engine_out: str) -> str:
    """Where the trtexec command keeps its timing cache: next to the engine."""
    return str(Path(engine_out).with_name("timing.cache"))


def _shape_spec(shapes: dict[str, tuple[int, ...]]) -> str:
    parts = []
    for name, dims in shapes.items():
        quoted = f"'{name}'" if any(c in name for c in ":,'") else name
        parts.append(f"{quoted}:{'x'.join(str(d) for d in dims) if dims else 'scalar'}")
    return ",".join(parts)


def trtexec_command(spec: BuildSpec, engine_out: str, trt_major: int | None = None) -> list[str]:
    """argv for trtexec. trt_major picks 10.x vs 11.x flags (default: the installed wheel, else 10)."""
    opts = parse_options(spec.options)
    major = trt_major if trt_major is not None else (installed_major() or 10)
    argv = ["trtexec", f"--onnx={spec.onnx_path}", f"--saveEngine={engine_out}", "--skipInference"]
    if major < 11:
        argv.append("--stronglyTyped")  # 11.x networks are always strongly typed
    for index, profile in enumerate(spec.profiles):
        if len(spec.profiles) > 1:
            argv.append(f"--profile={index}")
        for point in ("min", "opt", "max"):
            argv.append(f"--{point}Shapes={_shape_spec(profile.shapes_at(point))}")
    if opts.workspace_mb is not None:
        argv.append(f"--memPoolSize=workspace:{opts.workspace_mb}M")
    argv.append(f"--builderOptimizationLevel={opts.builder_optimization_level}")
    if opts.hardware_compatibility_level != "none":
        argv.append(f"--hardwareCompatibilityLevel={_HARDWARE_FLAG[opts.hardware_compatibility_level]}")
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


def trtexec_shell(spec: BuildSpec, engine_out: str, trt_major: int | None = None) -> str:
    """Printable shell lines: copy the pinned timing cache (if any), then run trtexec."""
    lines = []
    if spec.timing_cache is not None:
        lines.append(shlex.join(["cp", str(spec.timing_cache), timing_cache_copy(engine_out)]))
    lines.append(shlex.join(trtexec_command(spec, engine_out, trt_major)))
    return "\n".join(lines)
