"""The backend interface: what the stages call, and nothing else.

A backend turns the precision stage's ONNX graph into an engine file plus layer information
(`build`), says which toolchain facts that engine depends on (`fingerprint`, `build_config`),
and loads an engine into a runner that validation uses (`load`). The stages see only `Backend`
and `BaseRunner`; which framework sits underneath is each subclass's business, imported lazily.

Runners follow Polygraphy's runner design: public `activate`/`deactivate`/`infer`/`time` check
the runner's state and arguments, then delegate to `*_impl` methods of the subclass; a runner is
used as a context manager.
"""

from __future__ import annotations

import abc
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager

if TYPE_CHECKING:
    import numpy as np

from trtmake.errors import UserError
from trtmake.host import cpu_name
from trtmake.profiles import Profile

ProgressStep = Callable[[], None]
MB = float(1 << 20)  # the runners' memory figures (*_mb) are in MiB


@dataclass(frozen=True)
class BuildSpec:
    """Everything a build reads. `options`: the backend's parsed options (Backend.parse_options)."""

    onnx_path: Path
    profiles: tuple[Profile, ...]
    options: Any
    timing_cache: Path | None = None  # pinned timing cache, an input of the key
    nodes: int | None = None  # node count of onnx_path when already known (saves a parse for layer info)


@dataclass
class BuildResult:
    """Files a build wrote into its workdir; the executor publishes them into the cache."""

    engine_path: Path
    layer_info: dict[str, Any]
    log: str = ""
    timing_cache_path: Path | None = None  # the timing cache the build produced (an output)
    extra: dict[str, Any] = field(default_factory=dict)


class BaseRunner(abc.ABC):
    """A loaded engine. `with backend.load(path, options) as runner: runner.infer(feeds)`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_active = False

    # -- lifetime -------------------------------------------------------------------------------
    def activate(self) -> None:
        if self.is_active:
            raise RuntimeError(f"runner {self.name} is already active")
        self.activate_impl()
        self.is_active = True

    def deactivate(self) -> None:
        if not self.is_active:
            return
        try:
            self.deactivate_impl()
        finally:
            self.is_active = False

    def __enter__(self) -> "BaseRunner":
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    # -- work -----------------------------------------------------------------------------------
    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on host arrays; every output comes back as a host array."""
        self._check_active("infer")
        self._check_feeds(feeds)
        return self.infer_impl(feeds)

    def time(self, feeds: dict[str, np.ndarray], iters: int, warmup: int,
             on_step: ProgressStep | None = None) -> list[float]:
        """`warmup` untimed runs, then `iters` timed ones; per-run latency in ms. `on_step` is
        called after each timed run (the progress bar)."""
        self._check_active("time")
        self._check_feeds(feeds)
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
            raise ValueError(f"iters must be an integer >= 1, got {iters!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
        return self.time_impl(feeds, iters, warmup, on_step or (lambda: None))

    def memory(self, feeds: dict[str, np.ndarray] | None = None) -> dict[str, float | None]:
        """{engine_file_mb, weights_mb, activation_mb}: the engine file's size, its weights, and
        the working memory one execution needs (each backend says how it measures; None where it
        cannot tell). With `feeds`, one execution is run first where the measure needs one."""
        self._check_active("memory")
        if feeds is not None:
            self._check_feeds(feeds)
        return self.memory_impl(feeds)

    def throughput(self, feeds: dict[str, np.ndarray], streams: int = 1, *, iters: int | None = None,
                   seconds: float | None = None) -> float:
        """Samples per second with `streams` executions in flight at once on `feeds`: `iters`
        executions in all, or as many as fit in `seconds` (give one of the two). One untimed
        execution per stream comes first."""
        self._check_active("throughput")
        self._check_feeds(feeds)
        if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
            raise ValueError(f"streams must be an integer >= 1, got {streams!r}")
        if (iters is None) == (seconds is None):
            raise ValueError("give exactly one of iters and seconds")
        if iters is not None and (isinstance(iters, bool) or not isinstance(iters, int) or iters < 1):
            raise ValueError(f"iters must be an integer >= 1, got {iters!r}")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0):
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        runs, elapsed = self.throughput_impl(feeds, streams, iters, seconds)
        batch = next(iter(feeds.values())).shape[0] if feeds and next(iter(feeds.values())).ndim else 1
        return float(runs * batch / elapsed) if elapsed > 0 else float("inf")

    def select_profile(self, index: int | None) -> None:
        """Run the following calls on optimization profile `index` of the engine (the order the
        build was given them); None: on the first profile that holds the inputs' shapes. A
        backend without profiles (one engine serves every shape) ignores it."""
        self._check_active("select_profile")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise ValueError(f"profile index must be an integer >= 0 or None, got {index!r}")
        self.select_profile_impl(index)

    # -- for subclasses -------------------------------------------------------------------------
    @abc.abstractmethod
    def activate_impl(self) -> None: ...

    @abc.abstractmethod
    def deactivate_impl(self) -> None: ...

    @abc.abstractmethod
    def input_names_impl(self) -> list[str]:
        """The engine's input tensor names (valid while active)."""

    @abc.abstractmethod
    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def time_impl(self, feeds: dict[str, np.ndarray], iters: int, warmup: int,
                  on_step: ProgressStep) -> list[float]: ...

    def select_profile_impl(self, index: int | None) -> None:
        """Nothing by default: a backend without optimization profiles."""

    def memory_impl(self, feeds: dict[str, np.ndarray] | None) -> dict[str, float | None]:
        raise NotImplementedError(f"runner {self.name} does not measure memory")

    def throughput_impl(self, feeds: dict[str, np.ndarray], streams: int, iters: int | None,
                        seconds: float | None) -> tuple[int, float]:
        """(executions completed, wall seconds they took) with `streams` in flight at once."""
        raise NotImplementedError(f"runner {self.name} does not measure concurrent throughput")

    # -- checks ---------------------------------------------------------------------------------
    def _check_active(self, what: str) -> None:
        if not self.is_active:
            raise RuntimeError(f"runner {self.name}: {what}() called outside its `with` block")

    def _check_feeds(self, feeds: dict[str, Any]) -> None:
        expected = set(self.input_names_impl())
        missing, extra = sorted(expected - set(feeds)), sorted(set(feeds) - expected)
        if missing or extra:
            raise UserError(f"inputs do not match the engine's {sorted(expected)}: missing {missing}, "
                            f"unexpected {extra}")


class Backend(abc.ABC):
    """A toolchain that turns an ONNX graph into an engine. Holds no state of its own. `options`:
    what its `parse_options` made of the target's `backend.<name>` slice, once per target."""

    name: str = ""
    #: the Q/DQ form this backend fuses: "tensorrt" (symmetric int8) or "onnxruntime" (uint8 activations)
    quantization_dialect: str = "onnxruntime"

    @abc.abstractmethod
    def parse_options(self, raw: dict[str, Any] | None) -> Any:
        """This backend's typed options, with their defaults (an unset key: absent or None)."""

    @abc.abstractmethod
    def fingerprint(self, options: Any) -> dict[str, str]:
        """The toolchain facts an engine built with these options depends on (all strings)."""

    @abc.abstractmethod
    def build_config(self, options: Any, profiles: tuple[Profile, ...]) -> dict[str, Any]:
        """The config slice a build reads, for its stage key (the parsed options: an unset key
        and its explicit default key alike)."""

    @abc.abstractmethod
    def build(self, spec: BuildSpec, workdir: Path) -> BuildResult: ...

    @abc.abstractmethod
    def load(self, engine_path: Path, options: Any) -> BaseRunner: ...

    def timing_cache(self, options: Any, resolve: Callable[[str], Path]) -> Path | None:
        """The pinned timing cache a build reads (an input of its key), or None."""
        return None

    def build_slot(self, options: Any, lock_dir: Path, timeout_s: float,
                   what: str) -> ContextManager[Any]:
        """Held around `build`: a share of the device the build runs on (nothing by default)."""
        return nullcontext()

    def int8_weight_type(self, options: Any) -> str:
        """The type of int8 weights in an onnxruntime-dialect graph: "int8" (signed, the default)
        or "uint8" where this machine's int8 kernels would saturate on signed weights."""
        return "int8"

    def proxy_level(self, options: Any) -> str:
        """The onnxruntime graph optimization level at which onnxruntime stands in for this
        backend's engines (auto_exclude's trial runs): "basic" runs Q/DQ in float, a proxy for
        another runtime's int8."""
        return "basic"

    def device_name(self, fingerprint: dict[str, str]) -> str:
        """What validation ran on, for people: a GPU's name or the CPU's model."""
        return cpu_name()
