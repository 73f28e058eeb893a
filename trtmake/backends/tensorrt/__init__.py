"""The TensorRT backend (DESIGN.md section 6): fingerprint, build, load -> runner.

Importing this module never imports `tensorrt` or `cuda`; each call does, lazily, and raises
MissingDependency with the install line when they are absent. The parts live in:
  options    the `backend.tensorrt` config slice, checked
  toolchain  imports, release checks, fingerprint, probe (backend: auto)
  build      parser, strongly typed network, profiles, builder config, plan
  timing     pinned timing cache in, produced cache out, explicit merge
  layers     engine inspector JSON -> layer info
  runner     runner (infer / time)
  trtexec    the equivalent trtexec command (show=trtexec)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from trtmake.backends.base import BuildResult, BuildSpec
from trtmake.backends.tensorrt.build import build as _build
from trtmake.backends.tensorrt.options import parse_options
from trtmake.backends.tensorrt.runner import TensorRTRunner
from trtmake.backends.tensorrt.timing import merge_timing_caches
from trtmake.backends.tensorrt.toolchain import (
    SUPPORTED_RELEASES, VERSION_GATED, import_cuda_runtime, import_tensorrt, probe,
)
from trtmake.backends.tensorrt.toolchain import fingerprint as _fingerprint
from trtmake.backends.tensorrt.trtexec import trtexec_command, trtexec_shell
from trtmake.profiles import Profile

__all__ = [
    "SUPPORTED_RELEASES", "VERSION_GATED", "TensorRTBackend", "TensorRTRunner", "TensorrtBackend",
    "merge_timing_caches", "probe", "trtexec_command", "trtexec_shell",
]


class TensorRTBackend:
    """Backend protocol implementation; holds no state."""

    name = "tensorrt"

    def fingerprint(self, options: dict[str, Any]) -> dict[str, str]:
        return _fingerprint(options)

    def build_config(self, options: dict[str, Any], profiles: tuple[Profile, ...]) -> dict[str, Any]:
        """The config slice a build reads, for its stage key: checked options with defaults
        filled in (so `{}` and explicit defaults key alike), without `device` (the GPU it picks
        is in the fingerprint), and every profile's min/opt/max."""
        opts = asdict(parse_options(options))
        del opts["device"]
        shapes = {p.name: {n: [list(r.min), list(r.opt), list(r.max)] for n, r in sorted(p.shapes.items())}
                  for p in profiles}
        return {"options": opts, "profiles": shapes}

    def build(self, spec: BuildSpec, workdir: Path) -> BuildResult:
        return _build(spec, workdir)

    def load(self, engine_path: Path, options: dict[str, Any]) -> TensorRTRunner:
        import_tensorrt()  # fail here, with the install line, rather than inside `with`
        import_cuda_runtime()
        return TensorRTRunner(engine_path, options)


TensorrtBackend = TensorRTBackend  # the spelling trtmake/backends/select.py imports

# The module itself also satisfies the Backend protocol (name/fingerprint/build/load).
backend = TensorRTBackend()
name = backend.name
fingerprint = backend.fingerprint
build = backend.build
load = backend.load
