"""Resolve dotted paths from the config with Hydra's instantiate (`_target_`), never eval.

Locating and calling are separate steps so each error names the right key: an import error
names `<key>.factory`, an exception raised by the factory names `<key>.factory_args`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Mapping

from trtmake.errors import TrtmakeError, UserError
from trtmake.export.spec import DEFAULT_KEY, ExportSpec


def resolve_factory(path: str, args: Mapping[str, Any] | None = None,
                    key: str = f"{DEFAULT_KEY}.factory") -> Callable[[], Any]:
    """Import `path` and bind `args` (nested `_target_` entries are instantiated too).

    Returns a zero-argument callable; nothing of the factory runs yet.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if not isinstance(path, str) or not path:
        raise UserError(f"{key}: expected a dotted path, got {path!r}")
    cfg = {"_target_": path, "_partial_": True, "_convert_": "all", **dict(args or {})}
    try:
        bound = instantiate(cfg)
    except InstantiationException as exc:
        raise UserError(f"{key}: cannot import {path!r} ({_cause(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - any failure while importing user code
        raise UserError(f"{key}: cannot import {path!r} ({type(exc).__name__}: {exc})") from None
    if not isinstance(bound, functools.partial):
        raise UserError(f"{key}: {path!r} did not resolve to a callable")
    return bound


def call_factory(bound: Callable[[], Any], what: str, key: str) -> Any:
    """Call a bound factory; its exceptions become one-line UserErrors naming `key`."""
    try:
        return bound()
    except TrtmakeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the factory is user code
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"{key}: {what} raised {type(exc).__name__}: {first}") from None


def build_module(spec: ExportSpec) -> Any:
    """The object the spec's factory returns (checked to be an nn.Module by the exporter)."""
    bound = resolve_factory(spec.factory, spec.factory_args, f"{spec.key}.factory")
    return call_factory(bound, repr(spec.factory), f"{spec.key}.factory_args")


def weights_path(spec: ExportSpec) -> Path | None:
    """The state_dict file: `weights`, or what the `weights_from` callable returns. Must exist."""
    if spec.weights_from is not None:
        key = f"{spec.key}.weights_from"
        found = call_factory(resolve_factory(spec.weights_from, None, key), repr(spec.weights_from), key)
        if not isinstance(found, (str, Path)):
            raise UserError(f"{key}: {spec.weights_from!r} returned {type(found).__name__}, not a path")
        path = Path(found)
    elif spec.weights is not None:
        key, path = f"{spec.key}.weights", spec.weights
    else:
        return None
    if not path.is_file():
        raise UserError(f"{key}: weights file {str(path)!r} does not exist")
    return path


def _cause(exc: BaseException) -> str:
    """The root reason behind Hydra's wrapper: 'ModuleNotFoundError: No module named ...'."""
    inner: BaseException = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).splitlines()[0] if str(inner) else ""
    if inner is exc:
        text = text.replace(", set env var HYDRA_FULL_ERROR=1 to see chained exception.", "")
    return f"{type(inner).__name__}: {text}"
