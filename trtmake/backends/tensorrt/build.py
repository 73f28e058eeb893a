"""Engine build: ONNX parser -> strongly typed network -> profiles + builder config -> plan.

Precision comes from the graph (fp16 casts, Q/DQ nodes), never from builder flags: TensorRT 11
builds only strongly typed networks and 10.x gets the STRONGLY_TYPED creation flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.backends.base import BuildResult, BuildSpec
from trtmake.backends.tensorrt.layers import count_onnx_nodes, layer_info
from trtmake.backends.tensorrt.options import TrtOptions, parse_options
from trtmake.backends.tensorrt.timing import attach_timing_cache
from trtmake.backends.tensorrt.toolchain import (
    cuda_call, import_cuda_runtime, import_tensorrt, make_logger, release_note, release_of,
)
from trtmake.errors import BuildFailed, UserError
from trtmake.profiles import Profile

ENGINE_FILE = "engine.plan"
TIMING_FILE = "timing.cache"


def network_flags(trt: Any, major: int) -> int:
    """10.x: the STRONGLY_TYPED bit. 11.x: 0 (always strongly typed; the flag is deprecated)."""
    if major >= 11:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def parse_onnx(trt: Any, network: Any, logger: Any, onnx_path: Path) -> Any:
    """Parse with OnnxParser; BuildFailed listing every parser error with its node."""
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse_from_file(str(onnx_path))
    errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
    if not ok or errors:
        detail = "; ".join(errors) or "no error reported"
        raise BuildFailed(f"TensorRT's ONNX parser rejected {onnx_path.name}: {detail}")
    return parser


def _parser_error(err: Any) -> str:
    index = err.node()
    where = f"node {index} '{err.node_name()}' ({err.node_operator()})" if index >= 0 else "model"
    return f"{where}: {err.desc()}"


def configure(trt: Any, config: Any, opts: TrtOptions) -> list[str]:
    """Apply the options to an IBuilderConfig; returns notes about settings the release lacks."""
    notes = []
    if opts.workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    config.builder_optimization_level = opts.builder_optimization_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if opts.hardware_compatibility_level != "none":
        levels = {"ampere_plus": trt.HardwareCompatibilityLevel.AMPERE_PLUS,
                  "same_compute_capability": trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY}
        config.hardware_compatibility_level = levels[opts.hardware_compatibility_level]
    if opts.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if opts.tiling_optimization_level != "none":
        if hasattr(config, "tiling_optimization_level") and hasattr(trt, "TilingOptimizationLevel"):
            tiling = {"fast": trt.TilingOptimizationLevel.FAST,
                      "moderate": trt.TilingOptimizationLevel.MODERATE,
                      "full": trt.TilingOptimizationLevel.FULL}
            config.tiling_optimization_level = tiling[opts.tiling_optimization_level]
        else:
            notes.append("tiling_optimization_level ignored: this TensorRT release has no tiling optimization")
    if opts.max_aux_streams is not None:
        if hasattr(config, "max_aux_streams"):
            config.max_aux_streams = opts.max_aux_streams
        else:
            notes.append("max_aux_streams ignored: this TensorRT release has no auxiliary streams")
    return notes


def network_inputs(network: Any) -> dict[str, Any]:
    return {t.name: t for t in (network.get_input(i) for i in range(network.num_inputs))}


def add_profiles(builder: Any, network: Any, config: Any, profiles: tuple[Profile, ...]) -> int:
    """One optimization profile per declared profile; min/opt/max per input in network order."""
    inputs = network_inputs(network)
    dynamic = [n for n, t in inputs.items() if any(d < 0 for d in tuple(t.shape))]
    for name, tensor in inputs.items():
        if tensor.is_shape_tensor:
            raise UserError(f"model input '{name}' is a shape tensor; trtmake profiles cover "
                            "execution tensors only")
    if not profiles:
        if dynamic:
            raise UserError(f"model inputs {dynamic} have dynamic dims; declare profile.shapes")
        return 0
    for profile in profiles:
        unknown = sorted(set(profile.shapes) - set(inputs))
        missing = [n for n in dynamic if n not in profile.shapes]
        if unknown or missing:
            what = f"unknown inputs {unknown}" if unknown else f"no shapes for dynamic inputs {missing}"
            raise UserError(f"profile '{profile.name}': {what}; the model's inputs are {sorted(inputs)}")
        opt_profile = builder.create_optimization_profile()
        for name in inputs:
            rng = profile.shapes.get(name)
            if rng is not None:
                opt_profile.set_shape(name, rng.min, rng.opt, rng.max)
        if config.add_optimization_profile(opt_profile) < 0:
            raise BuildFailed(f"TensorRT rejected optimization profile '{profile.name}'")
    return len(profiles)


def build(spec: BuildSpec, workdir: Path) -> BuildResult:
    """Build `spec.onnx_path` into workdir/engine.plan (+ timing.cache, layer info)."""
    opts = parse_options(spec.options)
    trt = import_tensorrt()
    rt = import_cuda_runtime()
    major, _ = release_of(trt)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    logger, lines = make_logger(trt)
    note = release_note(trt)
    notes = [note] if note else []
    cuda_call(rt.cudaSetDevice(opts.device), "cudaSetDevice")

    builder = trt.Builder(logger)
    flags = network_flags(trt, major)
    network = builder.create_network(flags)
    parse_onnx(trt, network, logger, Path(spec.onnx_path))
    config = builder.create_builder_config()
    notes += configure(trt, config, opts)
    n_profiles = add_profiles(builder, network, config, spec.profiles)
    _, cache_status = attach_timing_cache(trt, config, spec.timing_cache)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        errors = [ln for ln in lines if ln.startswith(("[ERROR]", "[INTERNAL_ERROR]"))]
        raise BuildFailed("TensorRT could not build the engine: " + ("; ".join(errors[-3:]) or "see log"))
    engine_path = workdir / ENGINE_FILE
    engine_path.write_bytes(serialized)
    timing_path = workdir / TIMING_FILE
    timing_path.write_bytes(config.get_timing_cache().serialize())

    info = layer_info(inspect_engine(trt, logger, serialized, opts), count_onnx_nodes(Path(spec.onnx_path)))
    if cache_status == "pinned-mismatch":
        notes.append(f"pinned timing cache {spec.timing_cache} does not match this GPU/TensorRT; "
                     "built from an empty cache")
    return BuildResult(
        engine_path=engine_path,
        layer_info=info,
        log="\n".join(notes + lines),
        timing_cache_path=timing_path,
        extra={"tensorrt": str(trt.__version__), "network_flags": flags, "profiles": n_profiles,
               "timing_cache": cache_status, "notes": notes},
    )


def inspect_engine(trt: Any, logger: Any, serialized: Any, opts: TrtOptions) -> str:
    """The engine inspector's JSON (DETAILED verbosity was set at build time)."""
    runtime = trt.Runtime(logger)
    if opts.version_compatible:
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(serialized)
    if engine is None:
        raise BuildFailed("TensorRT could not deserialize the engine it just built")
    inspector = engine.create_engine_inspector()
    return inspector.get_engine_information(trt.LayerInformationFormat.JSON)
