"""Built-in ONNX model generators: a registry, parameter checks and an atomic writer.

A target names a generator in `model.generator` with `model.generator_params`; the generated
file depends only on (name, resolved params, GENERATOR_VERSION[name]), so those make its key.

Importing this package is light (no onnx, no numpy): the up-to-date check reads
GENERATOR_VERSION only; onnx and the generators load when a generator is first used.
"""

from __future__ import annotations

import inspect
import json
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtmake.atomic import write_bytes_atomic
from trtmake.errors import UserError
from trtmake.heavy import lazy_import

resnet50 = lazy_import("trtmake.models.resnet50")
tiny = lazy_import("trtmake.models.tiny")

if TYPE_CHECKING:
    import onnx

# Bump a generator's version whenever its output bytes change for the same params.
GENERATOR_VERSION: dict[str, int] = {
    "resnet50": 1,
    "tiny_cnn": 1,
    "tiny_mlp": 1,
    "tiny_two_input": 1,
}


# name -> the module that defines the generator function of that name (its import, with onnx,
# waits until a generator is called or its parameters are checked)
GENERATORS = {"resnet50": resnet50, "tiny_cnn": tiny, "tiny_mlp": tiny, "tiny_two_input": tiny}


def generator(name: str) -> Callable[..., onnx.ModelProto]:
    return getattr(GENERATORS[name], name)


def _int(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _dim(value: Any) -> str | int:
    if value == "dynamic":
        return "dynamic"
    try:
        return _int(value, 1)
    except ValueError:
        raise ValueError(f'expected "dynamic" or an integer >= 1, got {value!r}') from None


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "seed": lambda v: _int(v, 0),
    "batch": _dim,
    "seq": _dim,
    "num_classes": lambda v: _int(v, 1),
    "fold_bn": _bool,
}


def resolve_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate `params` for generator `name` and fill in defaults (sorted keys)."""
    if name not in GENERATOR_VERSION:
        raise UserError(f"model.generator: unknown generator '{name}'; choose one of {sorted(GENERATOR_VERSION)}")
    signature = inspect.signature(generator(name)).parameters
    given = dict(params or {})
    for key in given:
        if key not in signature:
            raise UserError(f"model.generator_params.{key}: unknown parameter for generator '{name}'; "
                            f"accepted: {sorted(signature)}")
    resolved = {}
    for key, param in sorted(signature.items()):
        try:
            resolved[key] = _CHECKS[key](given.get(key, param.default))
        except ValueError as exc:
            raise UserError(f"model.generator_params.{key}: {exc}") from None
    return resolved


def build(name: str, params: Mapping[str, Any] | None = None) -> onnx.ModelProto:
    """The generated model in memory, with its generator and params recorded as metadata."""
    from onnx import helper

    resolved = resolve_params(name, params)
    proto = generator(name)(**resolved)
    helper.set_model_props(proto, {
        "trtmake.generator": name,
        "trtmake.generator_version": str(GENERATOR_VERSION[name]),
        "trtmake.generator_params": json.dumps(resolved, sort_keys=True),
        "trtmake.weights": "synthetic (seeded random), not trained",
    })
    return proto


def generate(name: str, params: Mapping[str, Any] | None, out_path: Path) -> None:
    """Write the generated ONNX file to `out_path` through a temp file and an atomic rename."""
    write_bytes_atomic(Path(out_path), build(name, params).SerializeToString())
