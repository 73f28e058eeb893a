"""`show=...`: print what trtmake would do, without doing it (Polygraphy's --gen-script idea)."""

from __future__ import annotations

import json
import sys

from trtmake.backends.base import BuildSpec
from trtmake.backends.tensorrt.commands import polygraphy_shell, trtexec_shell
from trtmake.backends.tensorrt.options import parse_options
from trtmake.errors import UserError
from trtmake.executor import run_target
from trtmake.onnx_info import input_specs
from trtmake.target import Target

CHOICES = ("plan", "trtexec", "polygraphy")


def show(target: Target, what: str) -> None:
    if what == "plan":
        print(json.dumps(target.cfg, indent=2, sort_keys=True))
        return
    if what in ("trtexec", "polygraphy"):
        print(command_text(target, what))
        return
    raise UserError(f"show={what}: unknown; choose one of {list(CHOICES)}")


def command_text(target: Target, tool: str) -> str:
    """The trtexec or polygraphy command that builds the same engine from the cached precision graph."""
    result = run_target(target, explain=True)
    if result.error:
        raise UserError(result.error)
    ctx = result.context
    precision = next((s for s in result.stages if s.name == "precision"), None)
    if precision is None or precision.status != "up to date" or ctx.profile is None:
        raise UserError(f"show={tool}: the precision graph of {target.name} is not built yet; "
                        f"run `trtmake target={target.name}` first")
    options = parse_options(target["backend"]["tensorrt"])  # the commands are TensorRT's, whatever the backend
    spec = BuildSpec(onnx_path=ctx.artifacts["precision"].path, profiles=ctx.profiles, options=options,
                     timing_cache=ctx.path(options.timing_cache) if options.timing_cache else None)
    dynamic = {s.name for s in input_specs(ctx.data["source"])
               if not all(isinstance(d, int) and d > 0 for d in s.dims)}
    if target["precision"]["mode"] == "int8" and ctx.backend.quantization_dialect != "tensorrt":
        print(f"# note: this INT8 graph uses the {ctx.backend.quantization_dialect} QDQ dialect; build with "
              "backend=tensorrt for TensorRT's symmetric dialect", file=sys.stderr)
    shell = trtexec_shell if tool == "trtexec" else polygraphy_shell
    return shell(spec, f"{target.name}.plan", dynamic)
