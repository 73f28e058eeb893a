"""PyTorch -> ONNX export (optional `torch` extra). Importing this package never imports torch."""

from trtmake.export.factory import build_module, resolve_factory, weights_path
from trtmake.export.key import export_key_inputs, export_summary
from trtmake.export.spec import ExportSpec, InputSpec
from trtmake.export.torch_export import export_onnx, require_torch, torch_available

__all__ = [
    "ExportSpec",
    "InputSpec",
    "build_module",
    "export_key_inputs",
    "export_onnx",
    "export_summary",
    "require_torch",
    "resolve_factory",
    "torch_available",
    "weights_path",
]
