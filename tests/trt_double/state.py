"""Per-module state of the simulator: release, knobs, log, the process-wide logger rule, GPU facts."""

from __future__ import annotations

import ctypes
import weakref
from dataclasses import dataclass, field
from typing import Any

LOGGER_DIFFERS = ("The logger passed into {api} differs from one already provided for an existing builder, runtime, "
                  "or refitter. TensorRT maintains only a single logger pointer at any given time, so the existing "
                  "value, which can be retrieved with getLogger(), will be used instead. In order to use a new "
                  "logger, first destroy all existing builder, runner or refitter objects.")


@dataclass
class State:
    """What one simulated `tensorrt` module shares between its objects.

    Knobs: `unsupported_ops` (ONNX op types the parser rejects with UNSUPPORTED_NODE; ops of a
    custom domain are always rejected), `fail_build` (a message: build_serialized_network logs it
    as an error and returns None). `log` records every (severity name, message) the simulator sent
    to a logger.
    """

    version: str
    unsupported_ops: set[str] = field(default_factory=set)
    fail_build: str | None = None
    log: list[tuple[str, str]] = field(default_factory=list)
    module: Any = None
    _owners: Any = field(default_factory=weakref.WeakSet)  # live Builders/Runtimes
    _logger: Any = None

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def emit(self, logger: Any, severity: str, msg: str) -> None:
        """Send one message through a user logger (ILogger.log(severity, msg)) and record it."""
        self.log.append((severity, msg))
        if logger is not None:
            logger.log(self.module.ILogger.Severity[severity], msg)

    def adopt_logger(self, owner: Any, logger: Any, api: str) -> Any:
        """TensorRT keeps one logger while any builder/runtime lives: a different one gets a warning."""
        if any(True for _ in self._owners) and self._logger is not None and logger is not self._logger:
            self.emit(self._logger, "WARNING", LOGGER_DIFFERS.format(api=api))
            logger = self._logger
        self._logger = logger
        self._owners.add(owner)
        return logger

    def compute_capability(self) -> tuple[int, int]:
        """Of the current device, read through Polygraphy's CUDA wrapper (fake or real libcudart)."""
        from polygraphy import cuda

        handle = cuda.wrapper().handle
        dev, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
        if handle.cudaGetDevice(ctypes.byref(dev)) != 0:
            raise RuntimeError("simulated TensorRT: no CUDA device")
        handle.cudaDeviceGetAttribute(ctypes.byref(major), 75, dev.value)
        handle.cudaDeviceGetAttribute(ctypes.byref(minor), 76, dev.value)
        return major.value, minor.value
