"""The TensorRT backend, on NVIDIA's Polygraphy: fingerprint, build, load -> runner.

Importing this package never imports `tensorrt`, `polygraphy` or CUDA; each call does, lazily,
and raises MissingDependency with the install line when they are absent. The parts:
  options    the `backend.tensorrt` config slice, checked
  toolchain  imports, release gate, TensorRT's log, fingerprint, probe (backend: auto)
  cuda       GPU facts from libcudart (through Polygraphy's CUDA wrapper)
  build      Polygraphy's loaders: parser, strongly typed network, profiles, config, engine
  timing     pinned timing cache in, produced cache out, explicit merge
  layers     engine inspector JSON (10.x and 11.x schemas) -> layer info
  runner     Polygraphy's TrtRunner behind trtmake's runner interface
  commands   the equivalent trtexec and polygraphy command lines (show=trtexec, show=polygraphy)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, ContextManager

from trtmake.backends.base import Backend, BuildResult, BuildSpec
from trtmake.backends.tensorrt import build as _build
from trtmake.backends.tensorrt.options import TrtOptions, parse_options
from trtmake.backends.tensorrt.runner import TensorRTRunner
from trtmake.backends.tensorrt.timing import merge_timing_caches
from trtmake.backends.tensorrt.toolchain import (
    SUPPORTED_RELEASES, VERSION_GATED, import_polygraphy_trt, import_tensorrt, probe,
)
from trtmake.backends.tensorrt.toolchain import fingerprint as _fingerprint
from trtmake.gpu_lock import gpu_slot
from trtmake.profiles import Profile

__all__ = ["SUPPORTED_RELEASES", "VERSION_GATED", "TensorRTBackend", "TensorRTRunner", "TrtOptions",
           "merge_timing_caches", "probe"]


class TensorRTBackend(Backend):
    name = "tensorrt"
    quantization_dialect = "tensorrt"

    def parse_options(self, raw: dict[str, Any] | None) -> TrtOptions:
        return parse_options(raw)

    def fingerprint(self, options: TrtOptions) -> dict[str, str]:
        return _fingerprint(options)

    def build_config(self, options: TrtOptions, profiles: tuple[Profile, ...]) -> dict[str, Any]:
        """The options an engine depends on, and every profile's min/opt/max; with several
        profiles their order too (it numbers them in the engine)."""
        opts = {k: v for k, v in asdict(options).items() if k not in TrtOptions.NOT_KEYED}
        shapes = {p.name: {n: [list(r.min), list(r.opt), list(r.max)] for n, r in sorted(p.shapes.items())}
                  for p in profiles}
        config = {"options": opts, "profiles": shapes}
        if len(profiles) > 1:
            config["profile_order"] = [p.name for p in profiles]
        return config

    def timing_cache(self, options: TrtOptions, resolve: Callable[[str], Path]) -> Path | None:
        return resolve(options.timing_cache) if options.timing_cache else None

    def build_slot(self, options: TrtOptions, lock_dir: Path, timeout_s: float,
                   what: str) -> ContextManager[Any]:
        """At most `max_builds_per_gpu` TensorRT builds at a time on the build's GPU."""
        return gpu_slot(lock_dir, options.device, options.max_builds_per_gpu, timeout_s, what=what)

    def build(self, spec: BuildSpec, workdir: Path) -> BuildResult:
        return _build.build(spec, workdir)

    def load(self, engine_path: Path, options: TrtOptions) -> TensorRTRunner:
        import_tensorrt()  # fail here, with the install line, rather than inside `with`
        import_polygraphy_trt()
        return TensorRTRunner(engine_path, options)

    def device_name(self, fingerprint: dict[str, str]) -> str:
        return f"{fingerprint.get('gpu', 'GPU')} (sm_{fingerprint.get('compute_capability', '?').replace('.', '')})"
