"""Enums of the fake TensorRT, with members spelt as in the real bindings."""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    TACTIC_SHARED_MEMORY = 4


class ProfilingVerbosity(enum.IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class HardwareCompatibilityLevel(enum.IntEnum):
    NONE = 0
    AMPERE_PLUS = 1
    SAME_COMPUTE_CAPABILITY = 2


class BuilderFlag(enum.IntEnum):
    TF32 = 6
    VERSION_COMPATIBLE = 14
    EXCLUDE_LEAN_RUNTIME = 15


class TilingOptimizationLevel(enum.IntEnum):
    NONE = 0
    FAST = 1
    MODERATE = 2
    FULL = 3


class LayerInformationFormat(enum.IntEnum):
    ONELINE = 0
    JSON = 1


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9
    FP4 = 10


class ErrorCode(enum.IntEnum):
    SUCCESS = 0
    INTERNAL_ERROR = 1
    INVALID_NODE = 4
    UNSUPPORTED_NODE = 8


class NetworkDefinitionCreationFlag10(enum.IntEnum):
    EXPLICIT_BATCH = 0  # deprecated and ignored in 10.x
    STRONGLY_TYPED = 1


class NetworkDefinitionCreationFlag11(enum.IntEnum):
    STRONGLY_TYPED = 1  # deprecated and ignored in 11.x: networks are always strongly typed
