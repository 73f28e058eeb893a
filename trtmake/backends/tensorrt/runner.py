"""TensorRT runner on cuda-python (NVIDIA's CUDA Python bindings), not pycuda.

Why cuda-python: it is NVIDIA's official, pip-installable binding (`cuda-python` /
`cuda-bindings`, wheels for CUDA 12 and 13), TensorRT's own Python samples use it, and it needs
no compiler or CUDA toolkit at install time. pycuda would add a second CUDA binding with its
own context handling for no gain, so it is not supported.

Flow (named-tensor API, TensorRT >= 10): set_input_shape for every input, read output shapes,
allocate device buffers, set_tensor_address, copy inputs host->device on the runner's stream,
execute_async_v3(stream), copy outputs device->host, synchronize. `time` brackets each
execute_async_v3 with CUDA events on the same stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trtmake.backends.tensorrt.options import parse_options
from trtmake.backends.tensorrt.toolchain import cuda_call, import_cuda_runtime, import_tensorrt, make_logger
from trtmake.errors import BuildFailed, UserError


def numpy_dtypes(trt: Any) -> dict[Any, Any]:
    """TensorRT I/O data types numpy can hold; bf16/fp8/int4/fp4 I/O is refused."""
    return {
        trt.DataType.FLOAT: np.float32,
        trt.DataType.HALF: np.float16,
        trt.DataType.INT8: np.int8,
        trt.DataType.INT32: np.int32,
        trt.DataType.INT64: np.int64,
        trt.DataType.BOOL: np.bool_,
        trt.DataType.UINT8: np.uint8,
    }


class TensorRTRunner:
    """A deserialized engine with its buffers; use as a context manager."""

    def __init__(self, engine_path: Path, options: dict[str, Any]) -> None:
        self.engine_path = Path(engine_path)
        self.opts = parse_options(options)
        self._active = False

    # -- lifetime ---------------------------------------------------------------------------
    def __enter__(self) -> "TensorRTRunner":
        trt = import_tensorrt()
        rt = import_cuda_runtime()
        self._trt, self._rt = trt, rt
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._events: list[Any] = []
        self._stream = None
        cuda_call(rt.cudaSetDevice(self.opts.device), "cudaSetDevice")
        self._logger, self._log = make_logger(trt)
        runtime = trt.Runtime(self._logger)
        if self.opts.version_compatible:
            runtime.engine_host_code_allowed = True
        engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:
            raise BuildFailed(f"TensorRT could not load {self.engine_path}: " + "; ".join(self._log[-3:]))
        self._runtime, self._engine = runtime, engine
        self._context = engine.create_execution_context()
        dtypes = numpy_dtypes(trt)
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            trt_dtype = engine.get_tensor_dtype(name)
            if trt_dtype not in dtypes:
                raise BuildFailed(f"engine I/O tensor '{name}' has type {trt_dtype}; keep model I/O "
                                  "in fp32/fp16/int types")
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs)[name] = np.dtype(dtypes[trt_dtype])
        self._stream = cuda_call(rt.cudaStreamCreate(), "cudaStreamCreate")
        self._profile = 0
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._active = False
        rt = getattr(self, "_rt", None)
        if rt is None:
            return
        for ptr, _ in self._buffers.values():
            rt.cudaFree(ptr)
        self._buffers = {}
        for event in self._events:
            rt.cudaEventDestroy(event)
        self._events = []
        if self._stream is not None:
            rt.cudaStreamDestroy(self._stream)
            self._stream = None
        for attr in ("_context", "_engine", "_runtime"):
            self.__dict__.pop(attr, None)  # context before engine before runtime

    # -- work -------------------------------------------------------------------------------
    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; returns every output as a host array."""
        hosts = self._prepare(feeds)
        rt = self._rt
        outputs = {}
        self._execute()
        for name, dtype in self._outputs.items():
            out = np.empty(tuple(self._context.get_tensor_shape(name)), dtype=dtype)
            if out.nbytes:
                cuda_call(rt.cudaMemcpyAsync(out.ctypes.data, self._buffers[name][0], out.nbytes,
                                             rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream),
                          "cudaMemcpyAsync device->host")
            outputs[name] = out
        cuda_call(rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        del hosts  # host inputs stay referenced until the stream is done
        return outputs

    def time(self, feeds: dict[str, np.ndarray], iters: int, warmup: int) -> list[float]:
        """`warmup` untimed then `iters` timed executions; ms per execution from CUDA events."""
        hosts = self._prepare(feeds)
        rt = self._rt
        if not self._events:
            self._events = [cuda_call(rt.cudaEventCreate(), "cudaEventCreate") for _ in range(2)]
        start, end = self._events
        for _ in range(warmup):
            self._execute()
        cuda_call(rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        times = []
        for _ in range(iters):
            cuda_call(rt.cudaEventRecord(start, self._stream), "cudaEventRecord")
            self._execute()
            cuda_call(rt.cudaEventRecord(end, self._stream), "cudaEventRecord")
            cuda_call(rt.cudaEventSynchronize(end), "cudaEventSynchronize")
            times.append(float(cuda_call(rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime")))
        del hosts
        return times

    # -- helpers ----------------------------------------------------------------------------
    def _prepare(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Shapes first, then buffers and addresses, then input copies (queued on the stream)."""
        if not self._active:
            raise RuntimeError("TensorRTRunner used outside its `with` block")
        missing, extra = sorted(set(self._inputs) - set(feeds)), sorted(set(feeds) - set(self._inputs))
        if missing or extra:
            raise UserError(f"feeds do not match the engine inputs {sorted(self._inputs)}: "
                            f"missing {missing}, unexpected {extra}")
        hosts = {name: np.ascontiguousarray(feeds[name], dtype=dtype) for name, dtype in self._inputs.items()}
        self._select_profile({name: host.shape for name, host in hosts.items()})
        for name, host in hosts.items():
            if not self._context.set_input_shape(name, host.shape):
                raise UserError(f"input '{name}' shape {list(host.shape)} is outside the engine's "
                                f"optimization profile; widen profile.shapes.{name}")
        sizes = {name: host.nbytes for name, host in hosts.items()}
        for name, dtype in self._outputs.items():
            shape = tuple(self._context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BuildFailed(f"output '{name}' has a data-dependent shape {list(shape)}; "
                                  "not supported by the trtmake runner")
            sizes[name] = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        for name, nbytes in sizes.items():
            self._context.set_tensor_address(name, self._device_buffer(name, nbytes))
        rt = self._rt
        for name, host in hosts.items():
            if host.nbytes:
                cuda_call(rt.cudaMemcpyAsync(self._buffers[name][0], host.ctypes.data, host.nbytes,
                                             rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream),
                          "cudaMemcpyAsync host->device")
        return list(hosts.values())

    def _select_profile(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """With several optimization profiles, switch to the first one that holds the shapes."""
        engine = self._engine
        if engine.num_optimization_profiles < 2:
            return
        for index in range(engine.num_optimization_profiles):
            if all(_fits(shape, engine.get_tensor_profile_shape(name, index)) for name, shape in shapes.items()):
                if index != self._profile:
                    if not self._context.set_optimization_profile_async(index, int(self._stream)):
                        raise BuildFailed(f"TensorRT could not switch to optimization profile {index}")
                    self._profile = index
                return
        # no profile holds the shapes: set_input_shape reports it with the input's name

    def _device_buffer(self, name: str, nbytes: int) -> int:
        """A device buffer of at least nbytes for one tensor, reused across calls."""
        held = self._buffers.get(name)
        if held is not None and held[1] >= nbytes:
            return held[0]
        if held is not None:
            cuda_call(self._rt.cudaFree(held[0]), "cudaFree")
            del self._buffers[name]
        ptr = cuda_call(self._rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
        self._buffers[name] = (int(ptr), max(nbytes, 1))
        return int(ptr)

    def _execute(self) -> None:
        if not self._context.execute_async_v3(int(self._stream)):
            raise BuildFailed("TensorRT execute_async_v3 failed: " + "; ".join(self._log[-3:]))


def _fits(shape: tuple[int, ...], profile_shapes: Any) -> bool:
    """Whether shape lies within a profile's (min, opt, max) for one input."""
    low, _, high = (tuple(s) for s in profile_shapes)
    return len(shape) == len(low) and all(lo <= d <= hi for d, lo, hi in zip(shape, low, high, strict=True))
