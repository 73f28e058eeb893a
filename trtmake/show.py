"""`show=...`: print what trtmake would do, without doing it (Polygraphy's --gen-script idea)."""

from __future__ import annotations

import json
import sys

from trtmake.errors import UserError
from trtmake.target import Target

CHOICES = ("plan", "trtexec")


def show(target: Target, what: str) -> None:
    if what == "plan":
        print(json.dumps(target.cfg, indent=2, sort_keys=True))
        return
    if what == "trtexec":
        print(trtexec_text(target))
        return
    raise UserError(f"show={what}: unknown; choose one of {list(CHOICES)}")


def trtexec_text(target: Target) -> str:
    """The trtexec command line that builds the same engine from the cached precision graph."""
    from trtmake.backends.base import BuildSpec
    from trtmake.backends.tensorrt import trtexec_shell
    from trtmake.executor import run_target
    from trtmake.stages.build import target_profile

    result = run_target(target, explain=True)
    if result.error:
        raise UserError(result.error)
    ctx = result.context
    graph = ctx.artifacts.get("precision")
    if graph is None or graph.digest.startswith("("):
        raise UserError(f"show=trtexec: the precision graph of {target.name} is not built yet; "
                        f"run `trtmake target={target.name}` first")
    options = dict(target["backend"]["tensorrt"])
    tc = options.get("timing_cache")
    spec = BuildSpec(onnx_path=graph.path, profiles=(target_profile(ctx),), options=options,
                     timing_cache=target.path(tc) if tc else None)
    if target["precision"]["mode"] == "int8" and ctx.backend.name != "tensorrt":
        print("# note: this INT8 graph uses the onnxruntime QDQ dialect; build with backend=tensorrt "
              "for TensorRT's symmetric dialect", file=sys.stderr)
    return trtexec_shell(spec, f"{target.name}.plan")
