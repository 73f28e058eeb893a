"""The source stage's PyTorch branch: `model.export` -> ONNX (optional `torch` extra).

Key = weights digest + export config + torch/onnx (and model-code package) versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.keys import StageKey
from trtmake.stages.base import Context, Stage


def _spec(ctx: Context):
    from trtmake.export import ExportSpec

    return ExportSpec.from_config(ctx.target["model"]["export"], key="model.export", root=ctx.target.project_root)


def export_key(ctx: Context, stage: Stage) -> StageKey:
    from trtmake.export import export_key_inputs

    parts = export_key_inputs(_spec(ctx), digest=ctx.cache.stat.digest)
    return StageKey(stage.name, stage.version, config={"export": parts["config"]},
                    inputs=parts["inputs"], toolchain=parts["toolchain"])


def run_export(ctx: Context, workdir: Path) -> tuple[Path, dict[str, Any]]:
    from trtmake.export import export_onnx

    out = workdir / "model.onnx"
    info = export_onnx(_spec(ctx), out)
    keep = ("exporter", "torch", "opset", "max_abs_diff", "seconds", "warnings")
    return out, {"export": {k: info[k] for k in keep if k in info}}
