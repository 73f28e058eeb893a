"""Shared plumbing of the fake TensorRT: per-module state and the call-recording base class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fake_enums import Severity
from .gpu import FakeGpu
from .recorder import Recorder

PLAN_MAGIC = b"FAKEPLAN\n"
CACHE_MAGIC = b"FAKETCACHE\n"
ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8", 16: "BF16"}
FORMAT = {"FLOAT": "Row major linear FP32", "HALF": "Row major linear FP16 format",
           "INT8": "Thirty-two wide channel vectorized row major Int8 format.", "INT32": "Row major linear Int32",
           "INT64": "Row major linear Int64", "BOOL": "Row major linear Bool", "UINT8": "Row major linear UInt8",
           "BF16": "Row major linear BF16 format"}
RULES = {"double": lambda x: x * 2, "identity": lambda x: x}

NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32,
       "INT64": np.int64, "BOOL": np.bool_, "UINT8": np.uint8}


@dataclass
class Env:
    """Per-module state: release, GPU, recorder and knobs the tests turn."""

    version: str
    gpu: FakeGpu
    unsupported_ops: set[str] = field(default_factory=set)
    fail_build: bool = False
    rule: str = "double"
    hidden: set[str] = field(default_factory=set)  # attributes this "release" lacks
    real_cuda: Any = None  # a real cuda.bindings.runtime: execute copies input 0 on the GPU

    @property
    def rec(self) -> Recorder:
        return self.gpu.recorder

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def device_name(self) -> str:
        return self.gpu.devices[self.gpu.current_device].name if self.gpu.devices else "none"


class Recorded:
    """Base: property assignments to names in _PROPS are recorded as ("set:<name>", value)."""

    _env: Env
    _LABEL = ""
    _PROPS: tuple[str, ...] = ()  # recorded properties
    _FIELDS: tuple[str, ...] = ()  # other public instance attributes (inventory-checked too)

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name in object.__getattribute__(self, "_env").hidden:
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name in self._env.hidden:
            raise AttributeError(f"'{self._LABEL or type(self).__name__}' object has no attribute '{name}'")
        if name in self._PROPS:
            self._env.rec.add(self._LABEL or type(self).__name__, f"set:{name}", value)
        object.__setattr__(self, name, value)

    def _call(self, method: str, *args: Any) -> None:
        self._env.rec.add(self._LABEL or type(self).__name__, method, *args)


# -- logging ----------------------------------------------------------------------------------
class ILogger:
    Severity = Severity

    def __init__(self) -> None:
        pass

    def log(self, severity: Severity, msg: str) -> None:  # overridden by users
        pass
