"""The TensorRT runner: Polygraphy's TrtRunner underneath (named-tensor API, output allocator for
data-dependent shapes, its own CUDA wrapper), in trtmake's runner interface.

With several optimization profiles, each call switches to the profile `select_profile` chose,
or else to the first profile that holds the input shapes (profiles may overlap: a shape at the
edge of two is validated on the one it was asked for). `time` keeps the inputs on the device and
the outputs there too, and measures each execution (enqueue and stream synchronize) on the host
clock.

`memory`: the engine's own figures: activation = `device_memory_size_v2` (the largest profile's
context memory; per profile under `activation_mb_per_profile`), weights = the engine statistic
TOTAL_WEIGHTS_SIZE where the TensorRT release has it (11.x; None on 10.x).
`throughput` with N streams: N execution contexts, each on its own CUDA stream with its own
device buffers, enqueued together and synchronized per round.
"""

from __future__ import annotations

import time as clock
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from trtmake.backends.base import MB, BaseRunner, ProgressStep
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
        self._chosen: int | None = None

    def deactivate_impl(self) -> None:
        runner, self._runner = self._runner, None
        try:
            runner.deactivate()
        finally:
            self._engine = None

    def input_names_impl(self) -> list[str]:
        return list(self._inputs)

    def select_profile_impl(self, index: int | None) -> None:
        if index is not None and index >= self._engine.num_optimization_profiles:
            raise UserError(f"{self.engine_path.name} has {self._engine.num_optimization_profiles} optimization "
                            f"profile(s); there is no profile {index}")
        self._chosen = index

    # -- work ---------------------------------------------------------------------------------
    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._select_profile(feeds)
        with self._reporting():
            outputs = self._runner.infer(feeds, copy_outputs_to_host=True)
        # TrtRunner returns its own host buffers and overwrites them on the next call: copy
        return {name: np.array(value, copy=True) for name, value in outputs.items()}

    def time_impl(self, feeds: dict[str, np.ndarray], iters: int, warmup: int,
                  on_step: ProgressStep) -> list[float]:
        self._select_profile(feeds)
        resident = {}
        try:
            for name, value in feeds.items():
                resident[name] = _to_device(value)
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

    def memory_impl(self, feeds: dict[str, np.ndarray] | None) -> dict[str, Any]:
        engine, trt = self._engine, self._trt
        per_profile = [engine.get_device_memory_size_for_profile_v2(i) / MB
                       for i in range(engine.num_optimization_profiles)]
        weights = None
        if hasattr(trt, "EngineStat") and hasattr(engine, "get_engine_stat"):
            weights = engine.get_engine_stat(trt.EngineStat.TOTAL_WEIGHTS_SIZE) / MB
        return {"engine_file_mb": self.engine_path.stat().st_size / MB, "weights_mb": weights,
                "activation_mb": engine.device_memory_size_v2 / MB, "activation_mb_per_profile": per_profile}

    def throughput_impl(self, feeds: dict[str, np.ndarray], streams: int, iters: int | None,
                        seconds: float | None) -> tuple[int, float]:
        from polygraphy import cuda as pg_cuda

        profile = self._profile_for(feeds)
        lanes: list[tuple[Any, Any]] = []
        arrays: list[Any] = []
        try:
            with self._reporting():
                for _ in range(streams):
                    self._lane(feeds, profile, pg_cuda, lanes, arrays)
                self._round(lanes)  # untimed: every context's first run
                rounds, start = 0, clock.perf_counter()
                while (rounds * streams < iters) if iters is not None else (clock.perf_counter() - start < seconds):
                    self._round(lanes)
                    rounds += 1
                elapsed = clock.perf_counter() - start
        finally:
            for array in arrays:
                array.free()
            for _, stream in lanes:
                stream.free()
        return rounds * streams, elapsed

    def _lane(self, feeds: dict[str, np.ndarray], profile: int, pg_cuda: Any, lanes: list[Any],
              arrays: list[Any]) -> None:
        """One execution context on its own stream (appended to `lanes`), with device copies of
        the inputs and device buffers for the outputs (appended to `arrays`); the caller frees
        both, also when this fails half-way."""
        from polygraphy.datatype import DataType

        engine = self._engine
        context = engine.create_execution_context()
        if context is None:
            raise BuildFailed(f"TensorRT could not create another execution context for {self.engine_path.name} "
                              "(device memory); ask for fewer streams")
        stream = pg_cuda.Stream()
        lanes.append((context, stream))
        if profile:
            context.set_optimization_profile_async(profile, stream.ptr)
        for name, value in feeds.items():
            array = _to_device(value)
            arrays.append(array)
            context.set_input_shape(name, array.shape)
            context.set_tensor_address(name, array.ptr)
        for name in self._io_names():
            if self._is_input(name):
                continue
            shape = tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise UserError(f"{self.engine_path.name}: output '{name}' has a data-dependent shape {list(shape)}; "
                                "concurrent throughput needs output shapes known from the inputs")
            array = pg_cuda.DeviceArray(shape=shape, dtype=DataType.from_dtype(engine.get_tensor_dtype(name)))
            arrays.append(array)
            context.set_tensor_address(name, array.ptr)

    def _round(self, lanes: list[tuple[Any, Any]]) -> None:
        """Enqueue one execution on every lane, then wait for them all."""
        for context, stream in lanes:
            if not context.execute_async_v3(stream.ptr):
                raise BuildFailed(f"TensorRT could not run {self.engine_path.name} (execute_async_v3 failed)")
        for _, stream in lanes:
            stream.synchronize()

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
        """Switch to the optimization profile `_profile_for` picks."""
        index = self._profile_for(feeds)
        if index != self._profile:
            self._runner.set_profile(index)
            self._profile = index

    def _profile_for(self, feeds: dict[str, Any]) -> int:
        """The chosen optimization profile (select_profile), else the first that holds every
        input's shape."""
        engine, chosen = self._engine, self._chosen
        shapes = {name: tuple(value.shape) for name, value in feeds.items()}
        for index in range(engine.num_optimization_profiles) if chosen is None else [chosen]:
            if all(_fits(shape, engine.get_tensor_profile_shape(name, index)) for name, shape in shapes.items()):
                return index
        first = next(iter(shapes))
        allowed = [list(s) for s in engine.get_tensor_profile_shape(first, chosen or 0)]
        if chosen is not None:
            raise UserError(f"input shapes {shapes} lie outside optimization profile {chosen} of "
                            f"{self.engine_path.name} ('{first}': {allowed})")
        raise UserError(f"input shapes {shapes} lie outside every optimization profile of "
                        f"{self.engine_path.name} (profile 0 of '{first}': {allowed}); widen the profile")


def _fits(shape: tuple[int, ...], profile_shapes: Any) -> bool:
    """Whether shape lies within a profile's (min, opt, max) for one input."""
    low, _, high = (tuple(s) for s in profile_shapes)
    return len(shape) == len(low) and all(lo <= d <= hi for d, lo, hi in zip(shape, low, high, strict=True))


def _to_device(value: np.ndarray) -> Any:
    """A device copy of a host array (Polygraphy's DeviceArray; the caller frees it)."""
    from polygraphy import cuda as pg_cuda
    from polygraphy.datatype import DataType

    host = np.ascontiguousarray(value)
    array = pg_cuda.DeviceArray(shape=host.shape, dtype=DataType.from_dtype(host.dtype))
    array.copy_from(host)
    return array
