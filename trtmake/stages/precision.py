"""precision: fp32 (identity, no copy), fp16 (converted graph), int8 (QDQ graph from calibration).

Precision lives in the ONNX graph, not in builder flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.cache import ActionRecord
from trtmake.errors import BuildFailed
from trtmake.precision.fp16 import convert_fp16
from trtmake.keys import StageKey, toolchain_versions
from trtmake.ort_check import onnxruntime_refuses
from trtmake.stages.base import Stage, StageInput, StageOutput
from trtmake.stages.int8 import INT8_PARAMS, auto_exclude_inputs, precision_config, run_quantize


class PrecisionStage(Stage):
    name = "precision"
    version = 1
    params = ("precision", *INT8_PARAMS)
    served = {"graph": "precision"}

    def config(self, inp: StageInput) -> dict[str, Any]:
        p = inp.params["precision"]
        mode = p["mode"]
        if mode == "fp32":
            return {"mode": "fp32"}
        if mode == "fp16":
            return {"mode": mode, "keep_io_types": p["keep_io_types"],
                    "op_block_list": sorted(p["op_block_list"]), "node_block_list": sorted(p["node_block_list"])}
        return precision_config(inp)

    def key(self, inp: StageInput) -> StageKey:
        cfg = self.config(inp)
        inputs = {"source": inp.artifact("source").digest}
        if cfg["mode"] == "int8":
            inputs["calibration"] = inp.artifact("calibrate.stats").digest
            inputs.update(auto_exclude_inputs(inp))
        toolchain = {} if cfg["mode"] == "fp32" else toolchain_versions("onnx", "onnxruntime")
        return StageKey(self.name, self.version, config=cfg, inputs=inputs, toolchain=toolchain)

    def run(self, inp: StageInput, key: StageKey, workdir: Path) -> StageOutput:
        mode = key.config["mode"]
        src = inp.artifact("source").path
        if mode == "fp32":
            return StageOutput(data={"mode": "fp32", "identity": True})
        out = workdir / "model.onnx"
        if mode == "fp16":
            data = convert_fp16(src, out, inp.params["precision"])
        else:
            data = run_quantize(inp, key, src, out, workdir)
        _check_loads(out, mode)
        return StageOutput(files={"onnx": out}, data=data)

    def accept(self, inp: StageInput, record: ActionRecord) -> None:
        super().accept(inp, record)
        ctx = inp.ctx
        ctx.artifacts["precision"] = ctx.artifacts.pop("precision.onnx", None) or ctx.artifacts["source"]


def _check_loads(graph: Path, mode: str) -> None:
    """The graph this stage made must load in onnxruntime before it is published."""
    why = onnxruntime_refuses(graph)
    if why:
        raise BuildFailed(f"precision={mode}: the converted graph is invalid, nothing was published ({why})")
