"""Engine build with Polygraphy's loaders: ONNX parser -> strongly typed network -> profiles and
builder config -> serialized engine, then the engine inspector's layer information.

Precision comes from the graph (fp16 casts, Q/DQ nodes), never from builder flags: TensorRT 11
builds only strongly typed networks (its STRONGLY_TYPED flag is deprecated and ignored, so it is
not passed), and 10.x gets the STRONGLY_TYPED creation flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.backends.base import BuildResult, BuildSpec
from trtmake.backends.tensorrt import cuda
from trtmake.backends.tensorrt.layers import count_onnx_nodes, layer_info
from trtmake.backends.tensorrt.options import TrtOptions
from trtmake.backends.tensorrt.timing import attach_timing_cache, serialize_timing_cache
from trtmake.backends.tensorrt.toolchain import (
    capture_log, errors_in, import_polygraphy_trt, import_tensorrt, release_note, release_of,
)
from trtmake.errors import BuildFailed, UserError, first_line, shorten
from trtmake.profiles import InputSpec, Profile, check_profile, fill_static_inputs

ENGINE_FILE = "engine.plan"
TIMING_FILE = "timing.cache"
HARDWARE_LEVELS = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}
TILING_LEVELS = {"fast": "FAST", "moderate": "MODERATE", "full": "FULL"}


def strongly_typed_flag(trt: Any) -> bool:
    """Whether to ask for a strongly typed network: 10.x yes; 11.x is always strongly typed."""
    return release_of(trt)[0] < 11


def parse_network(pg: Any, onnx_path: Path, strongly_typed: bool, lines: list[str]) -> tuple[Any, Any, Any]:
    """(builder, network, parser) from Polygraphy's NetworkFromOnnxPath; BuildFailed naming the
    parser's errors (Polygraphy logs each one before it gives up)."""
    from polygraphy.exception import PolygraphyException

    try:
        return pg.NetworkFromOnnxPath(str(onnx_path), strongly_typed=strongly_typed)()
    except PolygraphyException as exc:
        errors = [ln.split("] ", 1)[-1] for ln in lines if ln.startswith("[ERROR]")]
        detail = errors[0] if errors else first_line(exc)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BuildFailed(f"TensorRT's ONNX parser rejected {onnx_path.name}: {shorten(detail)}"
                          f"{more}") from None


def network_inputs(network: Any) -> dict[str, Any]:
    return {t.name: t for t in (network.get_input(i) for i in range(network.num_inputs))}


def check_profiles(network: Any, profiles: tuple[Profile, ...], model: str) -> None:
    """Every declared profile fits the network's inputs (the check the source stage makes against
    the ONNX graph, here against what TensorRT parsed), before TensorRT raises on a bad range."""
    inputs = network_inputs(network)
    shape_tensors = [n for n, t in inputs.items() if t.is_shape_tensor]
    if shape_tensors:
        raise UserError(f"model inputs {shape_tensors} are shape tensors; trtmake profiles cover "
                        "execution tensors only")
    specs = [InputSpec(n, str(t.dtype), tuple(d if d >= 0 else None for d in tuple(t.shape)))
             for n, t in inputs.items()]
    dynamic = [s.name for s in specs if None in s.dims]
    if not profiles and dynamic:
        raise UserError(f"model inputs {dynamic} have dynamic dims; declare a profile for them")
    for profile in profiles:
        check_profile(fill_static_inputs(profile, specs), specs, model)


def polygraphy_profiles(pg: Any, network: Any, profiles: tuple[Profile, ...]) -> list[Any]:
    """One Polygraphy Profile per declared profile, inputs in network order."""
    out = []
    for profile in profiles:
        pg_profile = pg.Profile()
        for name in network_inputs(network):
            rng = profile.shapes.get(name)
            if rng is not None:
                pg_profile.add(name, min=tuple(rng.min), opt=tuple(rng.opt), max=tuple(rng.max))
        out.append(pg_profile)
    return out


def create_config(trt: Any, pg: Any, opts: TrtOptions, profiles: list[Any]) -> Any:
    """Polygraphy's CreateConfig with trtmake's options. The timing cache is attached afterwards
    by `attach_timing_cache` (trtmake's pinned-input rule, not Polygraphy's)."""
    return pg.CreateConfig(
        profiles=profiles or None,
        memory_pool_limits=({trt.MemoryPoolType.WORKSPACE: opts.workspace_mb << 20}
                            if opts.workspace_mb is not None else None),
        builder_optimization_level=opts.builder_optimization_level,
        hardware_compatibility_level=(getattr(trt.HardwareCompatibilityLevel, HARDWARE_LEVELS[opts.hardware_compatibility_level])
                                      if opts.hardware_compatibility_level != "none" else None),
        version_compatible=opts.version_compatible or None,
        profiling_verbosity=trt.ProfilingVerbosity.DETAILED,
        tiling_optimization_level=(getattr(trt.TilingOptimizationLevel, TILING_LEVELS[opts.tiling_optimization_level])
                                   if opts.tiling_optimization_level != "none" else None),
        max_aux_streams=opts.max_aux_streams,
    )


def build(spec: BuildSpec, workdir: Path) -> BuildResult:
    """Build `spec.onnx_path` into workdir/engine.plan (+ timing.cache, layer info)."""
    from polygraphy.exception import PolygraphyException

    opts = spec.options
    trt = import_tensorrt()
    pg = import_polygraphy_trt()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    note = release_note(trt)
    notes = [note] if note else []
    with capture_log() as lines:
        try:
            cuda.set_device(opts.device)
        except cuda.CudaError as exc:
            raise BuildFailed(f"TensorRT build: {exc}") from None
        strongly_typed = strongly_typed_flag(trt)
        builder, network, parser = parse_network(pg, Path(spec.onnx_path), strongly_typed, lines)
        check_profiles(network, spec.profiles, Path(spec.onnx_path).name)
        try:
            config = create_config(trt, pg, opts, polygraphy_profiles(pg, network, spec.profiles))(builder, network)
            cache_status, cache_note = attach_timing_cache(config, spec.timing_cache)
            engine_bytes = pg.EngineBytesFromNetwork((builder, network, parser), config=config)()
            engine = pg.EngineFromBytes(engine_bytes)()
        except (PolygraphyException, RuntimeError, ValueError) as exc:  # the bindings raise these too
            reason = errors_in(lines) or first_line(exc)
            raise BuildFailed(f"TensorRT could not build the engine: {reason}") from None
        if cache_note:
            notes.append(cache_note)
        engine_path = workdir / ENGINE_FILE
        engine_path.write_bytes(bytes(engine_bytes))
        timing_path = workdir / TIMING_FILE
        timing_path.write_bytes(serialize_timing_cache(config))
        inspector = engine.create_engine_inspector()
        info = layer_info(inspector.get_engine_information(trt.LayerInformationFormat.JSON),
                          spec.nodes if spec.nodes is not None else count_onnx_nodes(Path(spec.onnx_path)))
        memory = {"device_memory_bytes": int(engine.device_memory_size_v2),
                  "profiles": engine.num_optimization_profiles}
    return BuildResult(
        engine_path=engine_path,
        layer_info=info,
        log="\n".join(notes + lines),
        timing_cache_path=timing_path,
        extra={"tensorrt": str(trt.__version__), "strongly_typed_flag": strongly_typed,
               "profiles": len(spec.profiles), "timing_cache": cache_status, "notes": notes,
               "memory": memory},
    )
