"""trtmake: declarative, cached, validated engine builds from ONNX models."""

__version__ = "0.1.0"
