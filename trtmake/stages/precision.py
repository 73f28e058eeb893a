"""precision: fp32 (identity, no copy), fp16 (converted graph), int8 (QDQ graph from calibration).

Precision lives in the ONNX graph, not in builder flags (DESIGN.md section 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.errors import UserError
from trtmake.keys import StageKey
from trtmake.stages.base import Context, Stage, StageOutput
from trtmake.stages.source import _versions


class PrecisionStage(Stage):
    name = "precision"
    version = 1

    def config(self, ctx: Context) -> dict[str, Any]:
        p = ctx.target["precision"]
        mode = p["mode"]
        if mode == "fp32":
            return {"mode": "fp32"}
        if mode in ("fp16", "bf16"):
            return {"mode": mode, "keep_io_types": p["keep_io_types"],
                    "op_block_list": sorted(p["op_block_list"]), "node_block_list": sorted(p["node_block_list"])}
        from trtmake.stages.int8 import precision_config

        return precision_config(ctx)

    def key(self, ctx: Context) -> StageKey:
        cfg = self.config(ctx)
        inputs = {"source": ctx.artifact("source").digest}
        if cfg["mode"] == "int8":
            from trtmake.stages.int8 import auto_exclude_inputs

            inputs["calibration"] = ctx.artifact("calibrate.stats").digest
            inputs.update(auto_exclude_inputs(ctx))
        toolchain = {} if cfg["mode"] == "fp32" else _versions("onnx", "onnxruntime")
        return StageKey(self.name, self.version, config=cfg, inputs=inputs, toolchain=toolchain)

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        mode = key.config["mode"]
        src = ctx.artifact("source").path
        if mode == "fp32":
            return StageOutput(data={"mode": "fp32", "identity": True})
        if mode == "bf16":
            raise UserError("precision.mode=bf16: not implemented for the onnxruntime CPU backend (it has "
                            "no bf16 kernels); use fp16, or int8")
        out = workdir / "model.onnx"
        if mode == "fp16":
            from trtmake.precision.fp16 import convert_fp16

            data = convert_fp16(src, out, ctx.target["precision"])
        else:
            from trtmake.stages.int8 import run_quantize

            data = run_quantize(ctx, key, src, out, workdir)
        _check_loads(out, mode)
        return StageOutput(files={"onnx": out}, data=data)

    def accept(self, ctx: Context, record: dict[str, Any]) -> None:
        super().accept(ctx, record)
        ctx.artifacts["precision"] = ctx.artifacts.pop("precision.onnx", None) or ctx.artifacts["source"]


def _check_loads(graph: Path, mode: str) -> None:
    """The graph this stage made must load in onnxruntime before it is published."""
    from trtmake.errors import BuildFailed
    from trtmake.ort_check import onnxruntime_refuses

    why = onnxruntime_refuses(graph)
    if why:
        raise BuildFailed(f"precision={mode}: the converted graph is invalid, nothing was published ({why})")
