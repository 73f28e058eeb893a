"""Lazy imports of TensorRT and the CUDA runtime bindings, release checks, fingerprint, probe.

Nothing here imports `tensorrt` or `cuda` at module import time.
"""

from __future__ import annotations

from typing import Any

from trtmake.backends.tensorrt.options import parse_options
from trtmake.errors import BuildFailed, MissingDependency, UserError

# Releases whose Python API this backend is written and contract-tested against
# (tests/test_tensorrt_api_contract.py checks every TensorRT name against their inventories).
SUPPORTED_RELEASES = ("10.13", "11.4")
# TensorRT names used only on some releases' code path: checked against those releases only.
VERSION_GATED: dict[str, tuple[str, ...]] = {"STRONGLY_TYPED": ("10.13",)}
MIN_MAJOR = 10

INSTALL_HINT = "pip install 'trtmake[tensorrt]' (CUDA 12) or 'trtmake[tensorrt-cu13]' (CUDA 13)"


def import_tensorrt() -> Any:
    """The `tensorrt` module, or MissingDependency with the install line."""
    try:
        import tensorrt
    except (ImportError, OSError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise MissingDependency(f"TensorRT does not import ({reason}): {INSTALL_HINT}") from None
    major, _ = release_of(tensorrt)
    if major < MIN_MAJOR:
        raise MissingDependency(
            f"TensorRT {tensorrt.__version__} is too old (trtmake needs >= 10.13): {INSTALL_HINT}"
        )
    return tensorrt


def import_cuda_runtime() -> Any:
    """cuda-python's runtime module: `cuda.bindings.runtime` (>= 12.6), else `cuda.cudart`."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError:
            raise MissingDependency(f"cuda-python is not installed: {INSTALL_HINT}") from None
    return runtime


def release_of(trt: Any) -> tuple[int, int]:
    """(major, minor) of the imported TensorRT, from `__version__` such as "10.13.3.9"."""
    parts = str(trt.__version__).split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise BuildFailed(f"unreadable TensorRT version {trt.__version__!r}") from None


def release_note(trt: Any) -> str:
    """A log line when the imported release is not one the API contract covers, else ""."""
    major, minor = release_of(trt)
    if f"{major}.{minor}" in SUPPORTED_RELEASES:
        return ""
    return (f"TensorRT {trt.__version__} is not a release trtmake is contract-tested against "
            f"({', '.join(SUPPORTED_RELEASES)}); optional settings are applied where present")


def make_logger(trt: Any) -> tuple[Any, list[str]]:
    """A TensorRT logger that keeps every message above VERBOSE (for BuildResult.log)."""
    lines: list[str] = []

    class CaptureLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            if severity != trt.ILogger.Severity.VERBOSE:
                lines.append(f"[{getattr(severity, 'name', severity)}] {msg}")

    return CaptureLogger(), lines


def cuda_call(result: Any, what: str) -> Any:
    """Unpack a cuda-python `(err, *values)` tuple; BuildFailed naming the call on error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:  # cudaSuccess
        raise BuildFailed(f"CUDA {what} failed: {getattr(err, 'name', err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def cuda_version_string(value: int) -> str:
    """12080 -> "12.8" (CUDA encodes 1000 * major + 10 * minor)."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def gpu_facts(rt: Any, device: int) -> dict[str, str]:
    """GPU name, compute capability, CUDA runtime and driver versions of one device."""
    count = cuda_call(rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
    if device >= count:
        raise UserError(f"backend.tensorrt.device: {device} but only {count} CUDA device(s) are visible")
    prop = cuda_call(rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = prop.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode(errors="replace")
    facts = {
        "gpu": str(name).strip(),
        "compute_capability": f"{prop.major}.{prop.minor}",
        "cuda_runtime": cuda_version_string(cuda_call(rt.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion")),
    }
    err, driver = rt.cudaDriverGetVersion()
    facts["cuda_driver"] = cuda_version_string(driver) if int(err) == 0 and driver else "unknown"
    return facts


def fingerprint(options: dict[str, Any]) -> dict[str, str]:
    """Toolchain facts a TensorRT engine depends on (DESIGN.md section 4); all strings."""
    opts = parse_options(options)
    trt = import_tensorrt()
    rt = import_cuda_runtime()
    try:
        facts = gpu_facts(rt, opts.device)
    except BuildFailed as exc:
        raise UserError(f"backend tensorrt needs a visible CUDA GPU ({exc}); use backend: onnxruntime "
                        "or backend: auto") from None
    return {
        "tensorrt": str(trt.__version__),
        **facts,
        "hardware_compatibility_level": opts.hardware_compatibility_level,
        "version_compatible": str(opts.version_compatible).lower(),
    }


def probe(device: int = 0) -> tuple[bool, str]:
    """Whether tensorrt imports and a CUDA GPU is visible; the reason as a short phrase."""
    try:
        import tensorrt as trt
    except ImportError:
        return False, "tensorrt not installed"
    except Exception as exc:  # stub wheels and missing native libraries fail in other ways
        return False, f"tensorrt does not import ({type(exc).__name__})"
    try:
        version = str(trt.__version__)
        major, minor = release_of(trt)
    except (AttributeError, BuildFailed):
        return False, "tensorrt does not report a version (native libraries missing?)"
    if major < MIN_MAJOR:
        return False, f"TensorRT {version} is older than 10.13"
    try:
        rt = import_cuda_runtime()
    except MissingDependency:
        return False, "cuda-python not installed"
    err, count = rt.cudaGetDeviceCount()
    if int(err) != 0 or not count:
        reason = getattr(err, "name", str(err)) if int(err) != 0 else "0 devices"
        return False, f"no CUDA device visible ({reason})"
    if device >= count:
        return False, f"CUDA device {device} not visible ({count} device(s))"
    try:
        facts = gpu_facts(rt, device)
    except (BuildFailed, UserError) as exc:
        return False, str(exc)
    sm = facts["compute_capability"].replace(".", "")
    short = ".".join(version.split(".")[:3])
    return True, f"TensorRT {short} on {facts['gpu']} (sm_{sm})"
