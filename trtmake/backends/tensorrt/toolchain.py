"""Lazy imports of TensorRT and Polygraphy, the release gate, TensorRT's log, the fingerprint.

Nothing here imports `tensorrt` or `polygraphy` at module import time.

TensorRT wants one logger per process: every Builder, Runtime and parser of a process gets the
same ILogger. Polygraphy's loaders use `polygraphy.backend.trt.util.get_trt_logger()`, a process
global, so trtmake passes that same logger wherever it calls TensorRT itself, and reads what
TensorRT said from Polygraphy's logger (routed to Python's `logging`, never to the terminal).
"""

from __future__ import annotations

import logging
import platform
from contextlib import contextmanager
from typing import Any, Iterator

from trtmake.backends.tensorrt import cuda
from trtmake.backends.tensorrt.options import TrtOptions
from trtmake.errors import BuildFailed, MissingDependency, UserError

# Releases whose Python API this backend is written and contract-tested against
# (tests/test_tensorrt_api_contract.py checks every TensorRT name against their inventories).
SUPPORTED_RELEASES = ("10.13", "11.4")
# TensorRT names used only on some releases' code path: checked against those releases only.
# Engine statistics (the weights' size) arrived in 11.x; the runner asks for them only where present.
VERSION_GATED: dict[str, tuple[str, ...]] = {"EngineStat": ("11.4",), "TOTAL_WEIGHTS_SIZE": ("11.4",),
                                             "get_engine_stat": ("11.4",)}
# The oldest release with everything the backend uses (HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY
# arrived in 10.10, the strongly typed ONNX path and the inspector schema trtmake reads in 10.13).
MIN_RELEASE = (10, 13)

INSTALL_HINT = "pip install 'trtmake[tensorrt]' (CUDA 12) or 'trtmake[tensorrt-cu13]' (CUDA 13)"


def import_tensorrt() -> Any:
    """The `tensorrt` module, or MissingDependency with the install line."""
    try:
        import tensorrt
    except (ImportError, OSError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise MissingDependency(f"TensorRT does not import ({reason}): {INSTALL_HINT}") from None
    if release_of(tensorrt) < MIN_RELEASE:
        raise MissingDependency(
            f"TensorRT {tensorrt.__version__} is too old (trtmake needs >= "
            f"{'.'.join(map(str, MIN_RELEASE))}): {INSTALL_HINT}")
    return tensorrt


def import_polygraphy_trt() -> Any:
    """`polygraphy.backend.trt` (NVIDIA's loaders and runner), its log routed away from stdout."""
    try:
        from polygraphy.backend import trt as polygraphy_trt
    except ImportError:
        raise MissingDependency(f"polygraphy is not installed: {INSTALL_HINT}") from None
    _route_polygraphy_log()
    return polygraphy_trt


def release_of(trt: Any) -> tuple[int, int]:
    """(major, minor) of the imported TensorRT, from `__version__` such as "10.13.3.9"."""
    parts = str(getattr(trt, "__version__", "")).split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise BuildFailed(f"unreadable TensorRT version {getattr(trt, '__version__', None)!r}") from None


def release_note(trt: Any) -> str:
    """A log line when the imported release is not one the API contract covers, else ""."""
    major, minor = release_of(trt)
    if f"{major}.{minor}" in SUPPORTED_RELEASES:
        return ""
    return (f"TensorRT {trt.__version__} is not a release trtmake is contract-tested against "
            f"({', '.join(SUPPORTED_RELEASES)}); optional settings are applied where present")


# -- TensorRT's log, through Polygraphy's one process-wide logger --------------------------------
_POLYGRAPHY_LOG = "Polygraphy"


def _route_polygraphy_log() -> None:
    """Polygraphy prints to stdout by default, which would tear through trtmake's progress bars:
    send it to Python's logging instead, where `capture_log` collects it."""
    from polygraphy.logger import G_LOGGER

    if not G_LOGGER.use_python_logging_system:
        G_LOGGER.use_python_logging_system = True
        G_LOGGER.letter = False  # the level is in the record; no "[W]" prefix
        G_LOGGER.colors = False
        G_LOGGER.module_severity = G_LOGGER.VERBOSE  # TensorRT's INFO arrives as Polygraphy's VERBOSE
        log = logging.getLogger(_POLYGRAPHY_LOG)
        log.propagate = False
        log.setLevel(logging.DEBUG)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"[{record.levelname}] {record.getMessage()}")


@contextmanager
def capture_log() -> Iterator[list[str]]:
    """Every message TensorRT and Polygraphy log inside the block, as "[LEVEL] text" lines."""
    collect = _Collect()
    log = logging.getLogger(_POLYGRAPHY_LOG)
    log.addHandler(collect)
    try:
        yield collect.lines
    finally:
        log.removeHandler(collect)


def errors_in(lines: list[str], last: int = 3) -> str:
    """The last few error lines of a captured log, joined, or ""."""
    errors = [ln.split("] ", 1)[-1] for ln in lines if ln.startswith(("[ERROR]", "[CRITICAL]"))]
    return "; ".join(dict.fromkeys(errors[-last:]))


def trt_logger() -> Any:
    """The process's one TensorRT logger (Polygraphy's)."""
    import_polygraphy_trt()
    from polygraphy.backend.trt import util as trt_util

    return trt_util.get_trt_logger()


# -- fingerprint and probe -----------------------------------------------------------------------
def fingerprint(opts: TrtOptions) -> dict[str, str]:
    """Toolchain facts a TensorRT engine depends on; all strings.

    An engine is specific to the TensorRT release, the GPU model and compute capability, and the
    platform (operating system and CPU architecture: engines do not move between x86-64 and
    aarch64 hosts even with the same GPU), unless built hardware- or version-compatible, which is
    recorded too.
    """
    trt = import_tensorrt()
    try:
        facts = cuda.gpu_facts(opts.device)
    except cuda.CudaError as exc:
        raise UserError(f"backend tensorrt needs a visible CUDA GPU ({exc}); use backend=onnxruntime "
                        "or backend=auto") from None
    return {
        "tensorrt": str(trt.__version__),
        **facts,
        "os": platform.system().lower(),
        "arch": platform.machine().lower(),
        "hardware_compatibility_level": opts.hardware_compatibility_level,
        "version_compatible": str(opts.version_compatible).lower(),
    }


def probe(device: int = 0) -> tuple[bool, str]:
    """Whether tensorrt imports and CUDA device `device` is visible; the reason as a short phrase."""
    try:
        import tensorrt as trt
    except ImportError:
        return False, "tensorrt not installed"
    except Exception as exc:  # stub wheels and missing native libraries fail in other ways
        return False, f"tensorrt does not import ({type(exc).__name__})"
    try:
        version = str(trt.__version__)
        release = release_of(trt)
    except (AttributeError, BuildFailed):
        return False, "tensorrt does not report a version (native libraries missing?)"
    if release < MIN_RELEASE:
        return False, f"TensorRT {version} is older than {'.'.join(map(str, MIN_RELEASE))}"
    try:
        import_polygraphy_trt()
    except MissingDependency:
        return False, "polygraphy not installed"
    try:
        facts = cuda.gpu_facts(device)
    except cuda.CudaError as exc:
        return False, f"no CUDA device {device} ({exc})"
    sm = facts["compute_capability"].replace(".", "")
    short = ".".join(version.split(".")[:3])
    return True, f"TensorRT {short} on {facts['gpu']} (sm_{sm})"
