"""Backends: the only modules that import onnxruntime or tensorrt (lazily)."""
