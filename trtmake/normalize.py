"""Normalization of a user's ONNX file in the source stage, so later stages see one form:

- graph inputs that are also initializers removed (IR < 4 listed every weight as an input;
  onnxruntime then asks for them in every feed and the quantizer keeps them as inputs);
- the ai.onnx opset raised where a later stage needs it (per-channel QDQ needs DequantizeLinear's
  `axis`, opset 13), with onnx.version_converter;
- shape inference (value_info for every tensor the quantizer and TensorRT look at);
- the IR version stamped as the lowest one the opset needs, never above the original, so that
  an older onnxruntime loads what trtmake writes.

A model with external data is kept where it is (its tensors are never inlined): steps that would
rewrite the graph are skipped and said so. Imports onnx lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake import ort_check
from trtmake.errors import first_line
from trtmake.onnx_info import ai_onnx_opset

# bump when what normalize() writes changes, so that normalized sources are rebuilt
NORMALIZE_VERSION = 1
PER_CHANNEL_MIN_OPSET = 13  # DequantizeLinear gained `axis` (per-channel) in opset 13


PER_TENSOR = "int8 weights are quantized per-tensor (per-channel needs opset 13)"


def wanted_opset(opset: int, precision: dict[str, Any]) -> int | None:
    """The opset a later stage needs, or None: int8 with per-channel weights needs 13."""
    if precision.get("mode") == "int8" and precision.get("per_channel") and 0 < opset < PER_CHANNEL_MIN_OPSET:
        return PER_CHANNEL_MIN_OPSET
    return None


def min_ir_version(model) -> int:
    """The lowest IR version that carries the model's opset imports."""
    from onnx import helper

    try:
        return int(helper.find_min_ir_version_for(list(model.opset_import)))
    except Exception:  # an opset newer than this onnx knows: leave the stamp alone
        return int(model.ir_version)


def normalize(model, out: Path, *, opset: int | None, external: bool) -> dict[str, Any]:
    """Normalize `model` (a ModelProto, weights loaded) and write it to `out`. Returns what was
    done: {"steps": [...], "skipped": [...], "opset": final opset, "rewritten": wrote `out`}."""
    import onnx

    steps: list[str] = []
    skipped: list[str] = []
    graph = model.graph
    init = {t.name for t in graph.initializer}
    listed = [vi for vi in graph.input if vi.name in init]
    if external:
        if opset:
            skipped.append(f"opset {ai_onnx_opset(model)} -> {opset} not done (external data is kept in place, the "
                           f"graph is not rewritten): {PER_TENSOR}")
        skipped.append("shape inference: external data kept in place")
        return {"steps": steps, "skipped": skipped, "opset": ai_onnx_opset(model), "rewritten": False}
    if listed and model.ir_version < 4:
        keep = [vi for vi in graph.input if vi.name not in init]
        del graph.input[:]
        graph.input.extend(keep)
        steps.append(f"removed {len(listed)} graph inputs that are initializers (IR {model.ir_version})")
    ir_before = int(model.ir_version)
    if model.ir_version < 4:  # the converter and shape inference read IR < 4 as "weights are inputs"
        model.ir_version = max(min_ir_version(model), 4)
    if opset and ai_onnx_opset(model) < opset:
        before = ai_onnx_opset(model)
        try:
            from onnx import version_converter

            model = version_converter.convert_version(model, opset)
            steps.append(f"opset {before} -> {opset} (onnx.version_converter)")
        except Exception as exc:
            skipped.append(f"opset {before} -> {opset} failed ({first_line(exc, 120)}): {PER_TENSOR}")
    try:
        model = onnx.shape_inference.infer_shapes(model)
        steps.append("shape inference")
    except Exception as exc:
        skipped.append(f"shape inference failed ({first_line(exc)})")
    model.ir_version = ir_version_to_write(model)
    if model.ir_version != ir_before:
        steps.append(f"IR version {ir_before} -> {model.ir_version}")
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return {"steps": steps, "skipped": skipped, "opset": ai_onnx_opset(model), "rewritten": True}


def ir_version_to_write(model) -> int:
    """The IR version a graph trtmake writes carries: at least what its opset needs; lowered to
    that only where the installed onnxruntime refuses the stamp (a newer onnx package stamps
    its own IR version, which an older onnxruntime rejects)."""
    need = min_ir_version(model)
    if model.ir_version < need:
        return need
    if model.ir_version > need and ort_check.onnxruntime_rejects(int(model.ir_version), ai_onnx_opset(model)):
        return need
    return int(model.ir_version)
