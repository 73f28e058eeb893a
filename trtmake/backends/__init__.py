"""Backends: the only modules that build, load or run engines, and the only ones that import
tensorrt. onnxruntime is also trtmake's reference (the reference stage runs the source graph
through this package's OrtRunner), its graph checker (trtmake/ort_check.py) and its quantizer
(trtmake/precision/)."""
