"""The onnxruntime backend: the CPU engine and the embedded default where TensorRT is absent.

"Engine" = the optimized graph an ORT session writes at the configured graph optimization
level; it is loaded later with optimization disabled. Layer info = node counts before and
after optimization (the fusion evidence). ORT_ENABLE_ALL writes hardware-specific graphs
(NCHWc layouts), so the fingerprint then carries the CPU's ISA features.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from trtmake.backends.base import MB, Backend, BaseRunner, BuildResult, BuildSpec, ProgressStep
from trtmake.errors import BuildFailed, UserError, first_line
from trtmake.host import cpuinfo_field
from trtmake.keys import toolchain_versions
from trtmake.heavy import lazy_import
from trtmake.onnx_info import external_files, load_graph

np = lazy_import("numpy")
onnx = lazy_import("onnx")
ort = lazy_import("onnxruntime")

# ISA features that change which kernels/layouts ORT picks at ORT_ENABLE_ALL.
KERNEL_ISA = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8",
              "amx_bf16", "asimd", "asimddp", "sve", "i8mm", "bf16")

# An engine is one self-contained ONNX file (external data inlined): protobuf's 2 GiB message limit,
# less room for the graph itself.
ENGINE_LIMIT = (1 << 31) - (64 << 20)

LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
          "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


@dataclass(frozen=True)
class OrtOptions:
    """The `backend.onnxruntime` config slice, checked; the defaults live here (the schema leaves
    these keys unset, None)."""

    graph_optimization_level: str = "all"  # one of LEVELS
    intra_op_num_threads: int = 0  # 0: onnxruntime decides
    execution_provider: str = "CPUExecutionProvider"
    # int8 weights in onnxruntime-dialect graphs: auto (uint8 on x86-64 without VNNI, where signed
    # weights saturate onnxruntime's int8 kernels; else int8), int8 (fastest) or uint8
    int8_weights: str = "auto"


@lru_cache(maxsize=1)
def cpu_isa() -> str:
    flags = cpuinfo_field("flags", "Features")
    if flags is None:
        return platform.processor() or "unknown"
    present = set(flags.split())
    return ",".join(f for f in KERNEL_ISA if f in present) or "none"


def session_options(options: OrtOptions, level: str):
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    if options.intra_op_num_threads:
        so.intra_op_num_threads = options.intra_op_num_threads
    so.log_severity_level = 3
    return so


class OnnxruntimeBackend(Backend):
    name = "onnxruntime"
    quantization_dialect = "onnxruntime"

    def parse_options(self, raw: dict[str, Any] | None) -> OrtOptions:
        """An unset key (absent or None) takes its default. The schema types each key (the level is
        an enum) and trtmake/config/checks.py bounds the thread count; int8_weights is checked here."""
        given = {k: getattr(v, "value", v) for k, v in (raw or {}).items() if v is not None}  # str Enums
        opts = OrtOptions(**{k: given[k] for k in OrtOptions.__dataclass_fields__ if k in given})
        if opts.int8_weights not in ("auto", "int8", "uint8"):
            raise UserError(f"backend.onnxruntime.int8_weights: {opts.int8_weights!r} is not one of auto, int8, uint8")
        return opts

    def fingerprint(self, options: OrtOptions) -> dict[str, str]:
        level = options.graph_optimization_level
        return {
            "backend": "onnxruntime",
            **toolchain_versions("onnxruntime"),
            "execution_provider": options.execution_provider,
            "machine": platform.machine(),
            # Only an ALL-level graph is hardware specific; lower levels are portable.
            "isa": cpu_isa() if level == "all" else "portable",
        }

    def build_config(self, options: OrtOptions, profiles: Any) -> dict[str, Any]:
        """The config slice an ORT engine depends on (profiles do not change an ORT graph)."""
        return {"graph_optimization_level": options.graph_optimization_level,
                "execution_provider": options.execution_provider}

    def int8_weight_type(self, options: OrtOptions) -> str:
        """uint8 weights on x86-64 without VNNI: there onnxruntime multiplies uint8 activations by
        int8 weights with VPMADDUBSW, whose 16-bit pair sums saturate (EfficientNet-Lite0's top-1
        agreement fell from 1.00 to 0.91 on such a CPU); uint8 x uint8 products take a path that
        does not saturate, at a cost in speed. VNNI's dot products and ARM's do not saturate."""
        if options.int8_weights != "auto":
            return options.int8_weights
        isa = set(cpu_isa().split(","))
        x86 = platform.machine().lower() in ("x86_64", "amd64", "i686")
        return "uint8" if x86 and not isa & {"avx512_vnni", "avx_vnni", "amx_int8"} else "int8"

    def proxy_level(self, options: OrtOptions) -> str:
        """The engine's own level: at "all", Q/DQ fuses into the int8 kernels the engine runs."""
        return options.graph_optimization_level

    def build(self, spec: BuildSpec, workdir: Path) -> BuildResult:
        source = load_graph(spec.onnx_path, key="engine")
        weights = weight_bytes(source)
        if weights > ENGINE_LIMIT:
            raise UserError(f"{spec.onnx_path.name}: {weights / (1 << 30):.1f} GiB of weights; the onnxruntime backend's "
                            "engine is one ONNX file, which protobuf caps at 2 GiB: build it with backend=tensorrt")
        level = spec.options.graph_optimization_level
        engine = workdir / "engine.onnx"
        so = session_options(spec.options, level)
        so.optimized_model_filepath = str(engine)
        provider = spec.options.execution_provider
        _check_provider(provider)
        started = time.perf_counter()
        try:
            ort.InferenceSession(str(spec.onnx_path), so, providers=[provider])
        except Exception as exc:
            raise BuildFailed(f"onnxruntime could not build {spec.onnx_path.name}: {first_line(exc)}") from None
        seconds = time.perf_counter() - started
        before = spec.nodes if spec.nodes is not None else len(source.graph.node)
        after_graph = load_graph(engine, key="engine")
        _inline_external_data(after_graph, engine, spec.onnx_path.parent)
        ops: dict[str, int] = {}
        for node in after_graph.graph.node:
            op = f"{node.domain + '.' if node.domain else ''}{node.op_type}"
            ops[op] = ops.get(op, 0) + 1
        layer_info = {"layers_before": before, "layers_after": len(after_graph.graph.node),
                      "op_types": dict(sorted(ops.items())), "graph_optimization_level": level}
        log = (f"onnxruntime {ort.__version__} {provider} level={level}: {before} -> "
               f"{layer_info['layers_after']} nodes in {seconds:.2f} s\n")
        return BuildResult(engine_path=engine, layer_info=layer_info, log=log)

    def load(self, engine_path: Path, options: OrtOptions) -> "OrtRunner":
        return OrtRunner(engine_path, options)


def weight_bytes(model) -> int:
    """Bytes of the model's initializers, inline or external, from their declared shapes and types."""
    total = 0
    for tensor in model.graph.initializer:
        count = int(np.prod(tensor.dims, dtype=np.int64)) if tensor.dims else 1
        total += count * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    return total


def _inline_external_data(model, engine: Path, source_dir: Path) -> None:
    """ORT writes the optimized graph pointing at the source's external-data files; an engine
    in the cache must be self-contained, so those tensors are copied into it."""
    if not external_files(model, engine):
        return
    onnx.external_data_helper.load_external_data_for_model(model, str(source_dir))
    onnx.save(model, str(engine))


def resident_bytes() -> int | None:
    """This process's resident set size now (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class OrtRunner(BaseRunner):
    """A session on an engine (already optimized: loaded with optimization disabled) or any graph at
    `level`.

    Memory: `weights_mb` is the bytes of the engine graph's initializers; `activation_mb` the
    growth of the process's resident memory over the first execution after loading (onnxruntime's
    arena and intermediate buffers: what a run needs beyond the loaded session). An RSS delta is an
    estimate: memory freed earlier in the process may be reused, so it can read low.
    Throughput with N streams: N threads over this one session (session.run is thread-safe), each
    run using intra-op threads divided N ways.
    """

    def __init__(self, path: Path, options: OrtOptions | None = None, level: str = "disable"):
        super().__init__(f"onnxruntime:{Path(path).name}")
        self.path, self.options, self.level = Path(path), options or OrtOptions(), level
        self.session = None

    def activate_impl(self) -> None:
        self._rss_first_run: int | None = None
        self.session = self._open(self.options)
        self._rss_loaded = resident_bytes()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._inputs = [i.name for i in self.session.get_inputs()]

    def _open(self, options: OrtOptions):
        provider = options.execution_provider
        _check_provider(provider)
        try:
            return ort.InferenceSession(str(self.path), session_options(options, self.level), providers=[provider])
        except Exception as exc:
            raise BuildFailed(f"onnxruntime could not load {self.path.name}: {first_line(exc)}") from None

    def deactivate_impl(self) -> None:
        self.session = None

    def input_names_impl(self) -> list[str]:
        return list(self._inputs)

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outs = self.session.run(self.output_names, feeds)
        except Exception as exc:
            raise BuildFailed(f"onnxruntime failed to run {self.path.name}: {first_line(exc)}") from None
        if self._rss_first_run is None:
            self._rss_first_run = resident_bytes()
        return dict(zip(self.output_names, outs))

    def memory_impl(self, feeds: dict[str, np.ndarray] | None) -> dict[str, float | None]:
        if self._rss_first_run is None and feeds is not None:
            self.infer_impl(feeds)
        weights = weight_bytes(onnx.load(str(self.path), load_external_data=False))
        activation = None
        if self._rss_first_run is not None and self._rss_loaded is not None:
            activation = max(0, self._rss_first_run - self._rss_loaded) / MB
        return {"engine_file_mb": self.path.stat().st_size / MB, "weights_mb": weights / MB,
                "activation_mb": activation}

    def throughput_impl(self, feeds: dict[str, np.ndarray], streams: int, iters: int | None,
                        seconds: float | None) -> tuple[int, float]:
        session = self.session
        if streams > 1:  # the cores shared out: N runs at once, each on its share
            cores = self.options.intra_op_num_threads or os.cpu_count() or 1
            session = self._open(replace(self.options, intra_op_num_threads=max(1, cores // streams)))
        shares = [iters // streams + (i < iters % streams) for i in range(streams)] if iters else [None] * streams
        ready = threading.Barrier(streams + 1)

        def stream(share: int | None) -> tuple[int, float, float]:
            """(runs, when they started, when they ended): the span is measured by the streams
            themselves, not by the caller, which may wake from the barrier later than they do."""
            try:
                session.run(self.output_names, feeds)  # untimed: first-run allocations
            except Exception:
                ready.abort()  # nobody waits for a stream that failed
                raise
            ready.wait()
            t0, done = time.perf_counter(), 0
            while (done < share) if share is not None else (time.perf_counter() - t0 < seconds):
                session.run(self.output_names, feeds)
                done += 1
            return done, t0, time.perf_counter()

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=streams) as pool:
            futures = [pool.submit(stream, share) for share in shares]
            try:
                ready.wait()
            except threading.BrokenBarrierError:
                pass
            errors = [f.exception() for f in futures]
        failed = [e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)]
        if failed or any(errors):
            reason = first_line(failed[0]) if failed else "a stream did not start"
            raise BuildFailed(f"onnxruntime failed to run {self.path.name}: {reason}")
        spans = [f.result() for f in futures]
        return sum(s[0] for s in spans), max(s[2] for s in spans) - min(s[1] for s in spans)

    def time_impl(self, feeds: dict[str, np.ndarray], iters: int, warmup: int,
                  on_step: ProgressStep) -> list[float]:
        for _ in range(warmup):
            self.infer_impl(feeds)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            self.session.run(self.output_names, feeds)
            times.append((time.perf_counter() - start) * 1000.0)
            on_step()
        return times


def _check_provider(provider: str) -> None:
    available = ort.get_available_providers()
    if provider not in available:
        raise UserError(f"backend.onnxruntime.execution_provider: '{provider}' is not available here; "
                        f"choose one of {available}")
