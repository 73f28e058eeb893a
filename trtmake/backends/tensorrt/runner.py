"""The TensorRT runner: Polygraphy's TrtRunner underneath (named-tensor API, output allocator for
data-dependent shapes, its own CUDA wrapper), in trtmake's runner interface.

With several optimization profiles, each call switches to the first profile that holds the
input shapes. `time` keeps the inputs on the device and the outputs there too, and measures each
execution (enqueue and stream synchronize) on the host clock.
"""

from __future__ import annotations

import time as clock
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from trtmake.backends.base import BaseRunner, ProgressStep
from trtmake.backends.tensorrt import cuda
from trtmake.backends.tensorrt.options import TrtOptions
from trtmake.backends.tensorrt.toolchain import capture_log, errors_in, import_polygraphy_trt, import_tensorrt
from trtmake.errors import BuildFailed, UserError, first_line
from trtmake.heavy import lazy_import

np = lazy_import("numpy")


class TensorRTRunner(BaseRunner):
    """A deserialized engine on one device; use as a context manager."""

    def __init__(self, engine_path: Path, options: TrtOptions) -> None:
        super().__init__(f"tensorrt:{Path(engine_path).name}")
        self.engine_path = Path(engine_path)
        self.opts = options

    # -- lifetime -----------------------------------------------------------------------------
    def activate_impl(self) -> None:
        from polygraphy.exception import PolygraphyException

        self._trt = import_tensorrt()
        pg = import_polygraphy_trt()
        with capture_log() as lines:
            try:
                cuda.set_device(self.opts.device)
                engine = pg.EngineFromBytes(self.engine_path.read_bytes())()
                self._runner = pg.TrtRunner(engine)
                self._runner.activate()
            except (PolygraphyException, cuda.CudaError) as exc:
                reason = errors_in(lines) or first_line(exc)
                raise BuildFailed(f"TensorRT could not load {self.engine_path.name}: {reason}") from None
        self._engine = engine
        self._inputs = [n for n in self._io_names() if self._is_input(n)]
        self._profile = 0

    def deactivate_impl(self) -> None:
        runner, self._runner = self._runner, None
        try:
            runner.deactivate()
        finally:
            self._engine = None

    def input_names_impl(self) -> list[str]:
        return list(self._inputs)

    # -- work ---------------------------------------------------------------------------------
    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._select_profile(feeds)
        with self._reporting():
            outputs = self._runner.infer(feeds, copy_outputs_to_host=True)
        # TrtRunner returns its own host buffers and overwrites them on the next call: copy
        return {name: np.array(value, copy=True) for name, value in outputs.items()}

    def time_impl(self, feeds: dict[str, np.ndarray], iters: int, warmup: int,
                  on_step: ProgressStep) -> list[float]:
        from polygraphy import cuda as pg_cuda
        from polygraphy.datatype import DataType

        self._select_profile(feeds)
        resident = {}
        try:
            for name, value in feeds.items():
                host = np.ascontiguousarray(value)
                array = pg_cuda.DeviceArray(shape=host.shape, dtype=DataType.from_dtype(host.dtype))
                resident[name] = array
                array.copy_from(host)
            times = []
            with self._reporting():  # once around the loop: nothing but the run inside the timing
                for _ in range(warmup):
                    self._runner.infer(resident, copy_outputs_to_host=False)
                for _ in range(iters):
                    start = clock.perf_counter()
                    self._runner.infer(resident, copy_outputs_to_host=False)
                    times.append((clock.perf_counter() - start) * 1000.0)
                    on_step()
            return times
        finally:
            for array in resident.values():
                array.free()

    # -- helpers ------------------------------------------------------------------------------
    @contextmanager
    def _reporting(self) -> Iterator[None]:
        """TensorRT's and Polygraphy's messages while running, and a failed run as BuildFailed
        naming the engine and what TensorRT said."""
        from polygraphy.exception import PolygraphyException

        with capture_log() as lines:
            try:
                yield
            except PolygraphyException as exc:
                reason = errors_in(lines) or first_line(exc)
                raise BuildFailed(f"TensorRT could not run {self.engine_path.name}: {reason}") from None

    def _io_names(self) -> list[str]:
        return [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]

    def _is_input(self, name: str) -> bool:
        return self._engine.get_tensor_mode(name) == self._trt.TensorIOMode.INPUT

    def _select_profile(self, feeds: dict[str, Any]) -> None:
        """Switch to the first optimization profile that holds every input's shape."""
        engine = self._engine
        shapes = {name: tuple(value.shape) for name, value in feeds.items()}
        for index in range(engine.num_optimization_profiles):
            if all(_fits(shape, engine.get_tensor_profile_shape(name, index)) for name, shape in shapes.items()):
                if index != self._profile:
                    self._runner.set_profile(index)
                    self._profile = index
                return
        first = next(iter(shapes))
        raise UserError(f"input shapes {shapes} lie outside every optimization profile of "
                        f"{self.engine_path.name} (profile 0 of '{first}': "
                        f"{[list(s) for s in engine.get_tensor_profile_shape(first, 0)]}); widen the profile")


def _fits(shape: tuple[int, ...], profile_shapes: Any) -> bool:
    """Whether shape lies within a profile's (min, opt, max) for one input."""
    low, _, high = (tuple(s) for s in profile_shapes)
    return len(shape) == len(low) and all(lo <= d <= hi for d, lo, hi in zip(shape, low, high, strict=True))
