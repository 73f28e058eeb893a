"""What a PyTorch -> ONNX export reads: a frozen, validated spec and its canonical config slice.

Pure Python: nothing here imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from trtmake.errors import UserError

DEFAULT_KEY = "model.export"
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool")
FIELDS = ("factory", "factory_args", "weights", "weights_from", "inputs", "output_names",
          "dynamic_axes", "opset", "seed")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_NAME = re.compile(r"\S+")


@dataclass(frozen=True)
class InputSpec:
    """One example input: its graph name, the shape used for tracing, and its dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ExportSpec:
    """A module factory (dotted path + args), optional weights, example inputs, names, axes.

    `weights` is a state_dict file; `weights_from` a dotted callable returning its path (for
    packages that ship the file). Set at most one. `seed` seeds the factory's random init and
    the example inputs.
    """

    factory: str
    factory_args: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    weights_from: str | None = None
    inputs: tuple[InputSpec, ...] = ()
    output_names: tuple[str, ...] = ()
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    opset: int = 17
    seed: int = 0
    key: str = field(default=DEFAULT_KEY, compare=False)  # config key named in errors

    def __post_init__(self) -> None:
        _check_dotted(self.factory, f"{self.key}.factory")
        if self.weights_from is not None:
            _check_dotted(self.weights_from, f"{self.key}.weights_from")
        if self.weights is not None and self.weights_from is not None:
            raise UserError(f"{self.key}: set at most one of weights and weights_from")
        object.__setattr__(self, "factory_args", _plain(dict(self.factory_args), f"{self.key}.factory_args"))
        object.__setattr__(self, "weights", None if self.weights is None else Path(self.weights))
        object.__setattr__(self, "inputs", tuple(_input(i, n, self.key) for n, i in enumerate(self.inputs)))
        object.__setattr__(self, "output_names", tuple(self.output_names))
        _check_names(self)
        object.__setattr__(self, "dynamic_axes", _axes(self.dynamic_axes, self))
        if not isinstance(self.opset, int) or isinstance(self.opset, bool) or not 7 <= self.opset <= 30:
            raise UserError(f"{self.key}.opset: expected an integer opset in 7..30, got {self.opset!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise UserError(f"{self.key}.seed: expected an integer, got {self.seed!r}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], key: str = DEFAULT_KEY,
                    root: Path | None = None) -> "ExportSpec":
        """Build from a plain (resolved) config mapping; a relative `weights` is taken from `root`."""
        unknown = sorted(set(cfg) - set(FIELDS))
        if unknown:
            raise UserError(f"{key}.{unknown[0]}: unknown key; allowed: {', '.join(FIELDS)}")
        if not cfg.get("factory") or cfg.get("factory") == "???":
            raise UserError(f"{key}.factory: missing; set the dotted path of a module factory")
        args = {k: v for k, v in cfg.items() if v is not None}
        if "weights" in args:
            weights = Path(str(args["weights"])).expanduser()
            args["weights"] = weights if weights.is_absolute() or root is None else root / weights
        args["inputs"] = tuple(args.get("inputs", ()))
        args["output_names"] = tuple(args.get("output_names", ()))
        return cls(key=key, **args)

    def config(self) -> dict[str, Any]:
        """The canonical config slice of the export's key: plain JSON values, no weights path.

        The weights file stands in the key by its digest, so moving it changes nothing.
        """
        return {
            "factory": self.factory,
            "factory_args": self.factory_args,
            "weights_from": self.weights_from,
            "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in self.inputs],
            "output_names": list(self.output_names),
            "dynamic_axes": {n: {str(a): v for a, v in sorted(ax.items())} for n, ax in self.dynamic_axes.items()},
            "opset": self.opset,
            "seed": self.seed,
        }


def _check_dotted(path: Any, key: str) -> None:
    if not isinstance(path, str) or not _DOTTED.fullmatch(path):
        raise UserError(f"{key}: {path!r} is not a dotted path 'package.module.name'")


def _input(value: Any, n: int, key: str) -> InputSpec:
    where = f"{key}.inputs[{n}]"
    if isinstance(value, InputSpec):
        value = {"name": value.name, "shape": value.shape, "dtype": value.dtype}
    if not isinstance(value, Mapping) or set(value) - {"name", "shape", "dtype"} or "name" not in value:
        raise UserError(f"{where}: expected {{name, shape, dtype}}, got {value!r}")
    shape = value.get("shape")
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise UserError(f"{where}.shape: expected a list of positive integers, got {shape!r}")
    dtype = value.get("dtype", "float32")
    if dtype not in DTYPES:
        raise UserError(f"{where}.dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    return InputSpec(name=str(value["name"]), shape=tuple(shape), dtype=dtype)


def _check_names(spec: ExportSpec) -> None:
    if not spec.inputs:
        raise UserError(f"{spec.key}.inputs: declare at least one example input")
    if not spec.output_names:
        raise UserError(f"{spec.key}.output_names: declare the names of the module's outputs")
    names = [i.name for i in spec.inputs] + list(spec.output_names)
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UserError(f"{spec.key}: {name!r} is not a valid input/output name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{spec.key}: name {dup[0]!r} is used twice in inputs/output_names")


def _axes(axes: Mapping[str, Any], spec: ExportSpec) -> dict[str, dict[int, str]]:
    known = {i.name: len(i.shape) for i in spec.inputs} | {n: None for n in spec.output_names}
    out: dict[str, dict[int, str]] = {}
    for name, ax in dict(axes).items():
        where = f"{spec.key}.dynamic_axes.{name}"
        if name not in known:
            raise UserError(f"{where}: no input or output of that name; known: {', '.join(known)}")
        if not isinstance(ax, Mapping):
            raise UserError(f"{where}: expected {{axis: label}}, e.g. {{0: batch}}, got {ax!r}")
        parsed: dict[int, str] = {}
        for a, label in ax.items():
            try:
                axis = int(a)
            except (TypeError, ValueError):
                raise UserError(f"{where}: axis {a!r} is not an integer") from None
            rank = known[name]
            if axis < 0 or (rank is not None and axis >= rank):
                raise UserError(f"{where}: axis {axis} is out of range for rank {rank}")
            if not isinstance(label, str) or not label:
                raise UserError(f"{where}.{axis}: expected a dimension label, got {label!r}")
            parsed[axis] = label
        out[name] = dict(sorted(parsed.items()))
    return out


def _plain(value: Any, key: str) -> Any:
    """JSON-able copy (tuples -> lists, Paths -> str); anything else is a config error."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise UserError(f"{key}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{key}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{key}[{n}]") for n, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise UserError(f"{key}: {type(value).__name__} is not a plain config value")
