"""Optimization profiles: min/opt/max shapes per dynamic input, checked against the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from trtmake.errors import UserError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeRange:
    min: Shape
    opt: Shape
    max: Shape

    def at(self, point: str) -> Shape:
        return {"min": self.min, "opt": self.opt, "max": self.max}[point]


@dataclass(frozen=True)
class Profile:
    """One optimization profile: a shape range for every input of the model."""

    name: str
    shapes: dict[str, ShapeRange] = field(default_factory=dict)

    def shapes_at(self, point: str) -> dict[str, Shape]:
        return {name: rng.at(point) for name, rng in self.shapes.items()}


@dataclass(frozen=True)
class InputSpec:
    """What the model declares for one input: dims are ints, or str/None when dynamic."""

    name: str
    dtype: str  # numpy dtype name
    dims: tuple[int | str | None, ...]


def profile_from_config(name: str, shapes_cfg: dict, key: str = "profile.shapes") -> Profile:
    shapes: dict[str, ShapeRange] = {}
    for input_name, rng in (shapes_cfg or {}).items():
        where = f"{key}.{input_name}"
        try:
            parts = {p: tuple(int(d) for d in rng[p]) for p in ("min", "opt", "max")}
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{where}: needs min, opt and max as lists of integers ({exc})") from None
        shapes[input_name] = ShapeRange(parts["min"], parts["opt"], parts["max"])
        _check_range(f"profile={name}", input_name, shapes[input_name])
    return Profile(name=name, shapes=shapes)


def _check_range(key: str, input_name: str, rng: ShapeRange) -> None:
    """min, opt and max of one input agree with each other (no model needed: checked at planning)."""
    where = f"profile.shapes.{input_name}"
    if not len(rng.min) == len(rng.opt) == len(rng.max):
        raise UserError(f"{key}: {where}.min/opt/max have ranks {len(rng.min)}, {len(rng.opt)}, {len(rng.max)}; "
                        "give each the same number of dims")
    for axis, (lo, mid, hi) in enumerate(zip(rng.min, rng.opt, rng.max)):
        if not lo <= mid <= hi:
            raise UserError(f"{key}: {where} needs min <= opt <= max on axis {axis}, got {lo}, {mid}, {hi}; "
                            f"change {where}.min, .opt or .max so that they are in order")


def fill_static_inputs(profile: Profile, inputs: list[InputSpec]) -> Profile:
    """Inputs whose dims are all static need no declaration: add them with min=opt=max."""
    shapes = dict(profile.shapes)
    for spec in inputs:
        if spec.name not in shapes and all(isinstance(d, int) and d > 0 for d in spec.dims):
            dims = tuple(int(d) for d in spec.dims)
            shapes[spec.name] = ShapeRange(dims, dims, dims)
    return Profile(profile.name, shapes)


def check_profile(profile: Profile, inputs: list[InputSpec], model: str) -> None:
    """Raise UserError when the profile does not fit the model's declared inputs."""
    by_name = {i.name: i for i in inputs}
    key = f"profile={profile.name}"
    for name in profile.shapes:
        if name not in by_name:
            raise UserError(
                f"{key}: input '{name}' is not an input of {model}; its inputs are {sorted(by_name)}: "
                f"rename profile.shapes.{name} to one of them"
            )
    for spec in inputs:
        rng = profile.shapes.get(spec.name)
        if rng is None:
            raise UserError(
                f"{key}: model input '{spec.name}' {list(spec.dims)} has dynamic dims; "
                f"declare profile.shapes.{spec.name}.min/opt/max"
            )
        for point in ("min", "opt", "max"):
            shape = rng.at(point)
            if len(shape) != len(spec.dims):
                raise UserError(
                    f"{key}: profile.shapes.{spec.name}.{point} has rank {len(shape)} but {model} "
                    f"declares rank {len(spec.dims)} {list(spec.dims)}; give {len(spec.dims)} dims"
                )
            for axis, (got, want) in enumerate(zip(shape, spec.dims)):
                if got <= 0:
                    raise UserError(f"{key}: profile.shapes.{spec.name}.{point}[{axis}] must be > 0, got {got}; "
                                    "give a positive size")
                if isinstance(want, int) and want > 0 and got != want:
                    raise UserError(
                        f"{key}: profile.shapes.{spec.name}.{point}[{axis}] = {got} but {model} "
                        f"fixes that dim to {want}; use {want} there (min, opt and max), or a model "
                        "exported with that dim dynamic"
                    )
        _check_range(key, spec.name, rng)
