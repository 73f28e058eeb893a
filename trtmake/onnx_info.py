"""Facts read from an ONNX file without loading its weights: inputs, outputs, nodes, and the
external-data files it references. Imports `onnx` lazily (not on the up-to-date path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake import ort_check
from trtmake.errors import UserError
from trtmake.profiles import InputSpec

# onnx TensorProto element types -> numpy dtype names
_ELEM = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
         9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}


def load_graph(path: Path, key: str = "model.path"):
    """onnx.ModelProto without external data; a clear error for unreadable files."""
    import onnx

    try:
        if path.stat().st_size == 0:
            raise UserError(f"{key}: {path} is empty; export the model again")
        return onnx.load(str(path), load_external_data=False)
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{key}: {path} does not exist; fix the path") from None
    except Exception as exc:  # protobuf raises DecodeError and others
        raise UserError(f"{key}: {path} is not a readable ONNX model ({type(exc).__name__}); "
                        "re-export it") from None


def external_files(model, path: Path) -> list[str]:
    """Relative names of the external-data files the model's initializers point to."""
    import onnx.external_data_helper as edh

    names = set()
    for tensor in edh._get_all_tensors(model):
        if tensor.data_location == 1:  # EXTERNAL
            for entry in tensor.external_data:
                if entry.key == "location":
                    names.add(entry.value)
    return sorted(names)


def _vocab_sizes(model) -> dict[str, int]:
    """Integer inputs that index a table (Gather's indices over an initializer): the table's
    length, so synthetic ids stay in range."""
    tables = {t.name: list(t.dims) for t in model.graph.initializer}
    out: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in tables:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            dims = tables[node.input[0]]
            if dims and -len(dims) <= axis < len(dims) and dims[axis] > 0:
                out[node.input[1]] = min(out.get(node.input[1], dims[axis]), int(dims[axis]))
    return out


def describe(model) -> dict[str, Any]:
    """Plain-data summary stored in the source stage's record."""
    init = {t.name for t in model.graph.initializer}
    vocab = _vocab_sizes(model)

    def spec(vi) -> dict[str, Any]:
        t = vi.type.tensor_type
        dims = [int(d.dim_value) if d.HasField("dim_value") else d.dim_param or None for d in t.shape.dim]
        out = {"name": vi.name, "dtype": _ELEM.get(t.elem_type, f"onnx:{t.elem_type}"), "dims": dims}
        if vi.name in vocab:
            out["vocab"] = vocab[vi.name]
        return out

    return {
        "inputs": [spec(v) for v in model.graph.input if v.name not in init],
        "outputs": [spec(v) for v in model.graph.output],
        "nodes": len(model.graph.node),
        "opset": ai_onnx_opset(model),
        "ir_version": model.ir_version,
    }


def ai_onnx_opset(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def input_specs(described: dict[str, Any]) -> list[InputSpec]:
    return [InputSpec(i["name"], i["dtype"], tuple(i["dims"]), i.get("vocab")) for i in described["inputs"]]


def check_supported_dtypes(described: dict[str, Any], key: str, name: str = "the model") -> None:
    for i in described["inputs"]:
        if i["dtype"].startswith("onnx:") or i["dtype"] in ("bfloat16",):
            raise UserError(f"{key}: {name} input '{i['name']}' has dtype {_dtype_name(i['dtype'])}, which "
                            "trtmake cannot feed; use float32/float16/int32/int64/bool inputs")


def _dtype_name(dtype: str) -> str:
    if dtype.startswith("onnx:"):
        from onnx import TensorProto

        try:
            return f"{TensorProto.DataType.Name(int(dtype[5:])).lower()} ({dtype})"
        except ValueError:
            pass
    return dtype


def check_opset(described: dict[str, Any], key: str, name: str) -> None:
    """The model's ONNX stamps (IR version, ai.onnx opset) must be ones onnxruntime can load:
    reference outputs always come from onnxruntime, whatever the backend. Checked before any
    stage builds, so a model from the future fails as a user error, not as a failed build."""
    why = ort_check.onnxruntime_rejects(int(described.get("ir_version") or 0), int(described.get("opset") or 0))
    if why:
        raise UserError(f"{key}: {name} (IR version {described.get('ir_version')}, ai.onnx opset "
                        f"{described.get('opset')}) cannot run here: {why}; re-export the model with a "
                        "supported opset (torch.onnx.export(..., opset_version=N)) or upgrade onnxruntime")


