"""Optimization profiles: min/opt/max shapes per dynamic input, checked against the model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from trtmake.errors import UserError

Shape = tuple[int, ...]
POINTS = ("min", "opt", "max")


@dataclass(frozen=True)
class ShapeRange:
    min: Shape
    opt: Shape
    max: Shape

    def at(self, point: str) -> Shape:
        return {"min": self.min, "opt": self.opt, "max": self.max}[point]


@dataclass(frozen=True)
class Profile:
    """One optimization profile: a shape range for every input of the model. `batch`: the range
    of a dynamic batch dim (axis 0) of an input the profile does not declare."""

    name: str
    shapes: dict[str, ShapeRange] = field(default_factory=dict)
    batch: ShapeRange | None = None

    def shapes_at(self, point: str) -> dict[str, Shape]:
        return {name: rng.at(point) for name, rng in self.shapes.items()}


@dataclass(frozen=True)
class InputSpec:
    """What the model declares for one input: dims are ints, or str/None when dynamic."""

    name: str
    dtype: str  # numpy dtype name
    dims: tuple[int | str | None, ...]
    vocab: int | None = None  # an integer input indexing a table of this length (token ids)


# The entry of a resolved `profile.shapes` that carries `profile.batch` (target.from_config puts
# it there with every `profile.inputs` entry, so one mapping describes the whole profile).
BATCH_KEY = "<batch>"


def resolved_shapes(profile_cfg: dict) -> dict:
    """`profile.shapes`, `profile.inputs` (a list of {name, min, opt, max}) and `profile.batch`
    as one mapping of input name -> {min, opt, max}, the batch under BATCH_KEY."""
    shapes = dict(profile_cfg.get("shapes") or {})
    for i, entry in enumerate(profile_cfg.get("inputs") or []):
        name = entry.get("name")
        if not name or name in shapes:
            why = "has no name" if not name else f"repeats input '{name}'"
            raise UserError(f"profile.inputs[{i}]: {why}; give each input once, as {{name, min, opt, max}}")
        shapes[name] = {p: entry.get(p) for p in ("min", "opt", "max")}
    batch = profile_cfg.get("batch")
    if batch:
        shapes[BATCH_KEY] = {p: [batch[p]] for p in ("min", "opt", "max")}
    return shapes


def profile_from_config(name: str, shapes_cfg: dict, key: str = "profile.shapes") -> Profile:
    shapes: dict[str, ShapeRange] = {}
    batch = None
    for input_name, rng in (shapes_cfg or {}).items():
        where = "profile.batch" if input_name == BATCH_KEY else f"{key}.{input_name}"
        try:
            parts = {p: tuple(int(d) for d in rng[p]) for p in ("min", "opt", "max")}
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{where}: needs min, opt and max as lists of integers ({exc})") from None
        if input_name == BATCH_KEY:
            if not 0 < parts["min"][0] <= parts["opt"][0] <= parts["max"][0]:
                raise UserError(f"{where}: needs 0 < min <= opt <= max, got {[parts[p][0] for p in ('min', 'opt', 'max')]}")
            batch = ShapeRange(**parts)
            continue
        shapes[input_name] = ShapeRange(**parts)
        _check_range(f"profile={name}", input_name, shapes[input_name])
    return Profile(name=name, shapes=shapes, batch=batch)


def resolve_profiles(profile_cfg: dict) -> None:
    """In place: `profile.shapes` and each `profile.profiles.<name>.shapes` resolved
    (resolved_shapes), what every reader of the profile sees. A recipe declares one profile
    (name, shapes/inputs, batch) or several named ones (`profiles`), not both."""
    named = profile_cfg.get("profiles") or {}
    if named and (profile_cfg.get("shapes") or profile_cfg.get("inputs")):
        raise UserError("profile.profiles: set either profile.profiles (several named profiles) or "
                        "profile.shapes/profile.inputs (one profile), not both")
    for name, sub in named.items():
        if not name or "/" in name or name in POINTS:
            raise UserError(f"profile.profiles.{name}: a profile name must be non-empty, without '/', and none "
                            f"of {list(POINTS)}; rename it")
        sub["shapes"] = resolved_shapes(sub)
    profile_cfg["shapes"] = resolved_shapes(profile_cfg)


def config_profiles(profile_cfg: dict) -> tuple[Profile, ...]:
    """The profiles a resolved `profile` slice declares, in order (TensorRT's profile 0, 1, ...):
    its named `profiles`, else the one profile `name` with its `shapes`."""
    named = profile_cfg.get("profiles") or {}
    if named:
        return tuple(profile_from_config(name, sub["shapes"], key=f"profile.profiles.{name}.shapes")
                     for name, sub in named.items())
    return (profile_from_config(profile_cfg["name"], profile_cfg["shapes"]),)


def model_profiles(profile_cfg: dict, inputs: list[InputSpec], model: str) -> tuple[Profile, ...]:
    """The target's profiles, the model's static inputs filled into each, each checked against
    the model (named `model` in messages)."""
    profiles = tuple(fill_static_inputs(p, inputs) for p in config_profiles(profile_cfg))
    for profile in profiles:
        check_profile(profile, inputs, model)
    return profiles


def _static(d) -> bool:
    return isinstance(d, int) and d > 0


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
    """Inputs whose dims are all static need no declaration: add them with min=opt=max; one whose
    only dynamic dim is the batch (axis 0) takes the profile's batch range."""
    shapes = dict(profile.shapes)
    for spec in inputs:
        if spec.name in shapes or not all(_static(d) for d in spec.dims[1:]):
            continue
        rest = tuple(int(d) for d in spec.dims[1:])
        if spec.dims and _static(spec.dims[0]):
            dims = (int(spec.dims[0]), *rest)
            shapes[spec.name] = ShapeRange(dims, dims, dims)
        elif spec.dims and profile.batch is not None:
            b = profile.batch
            shapes[spec.name] = ShapeRange((b.min[0], *rest), (b.opt[0], *rest), (b.max[0], *rest))
    return Profile(profile.name, shapes, profile.batch)


def declare_hint(inputs: list[InputSpec], batch: ShapeRange | None) -> str:
    """The override that declares `inputs` (each with a dynamic dim besides the batch), with
    example values: the batch range for axis 0, 1/32/64 for other dynamic dims."""
    def example(d: int | str | None, axis: int, i: int) -> int:  # i: 0, 1, 2 for min, opt, max
        if _static(d):
            return int(d)
        return batch.at(POINTS[i])[0] if axis == 0 and batch is not None else (1, 32, 64)[i]

    entries = []
    for spec in inputs:
        at = [[example(d, axis, i) for axis, d in enumerate(spec.dims)] for i in range(len(POINTS))]
        entries.append(f"{{name: {json.dumps(spec.name)}, min: {at[0]}, opt: {at[1]}, max: {at[2]}}}")
    return f"'profile.inputs=[{', '.join(entries)}]'"


def summarize(names: list[str], shown: int = 4) -> str:
    """A list for a one-line message: the first few names and how many more there are."""
    head = ", ".join(repr(n) for n in names[:shown])
    return head + (f", ... ({len(names)} in all)" if len(names) > shown else "")


def check_profile(profile: Profile, inputs: list[InputSpec], model: str) -> None:
    """Raise UserError when the profile does not fit the model's declared inputs."""
    by_name = {i.name: i for i in inputs}
    key = f"profile={profile.name}"
    for name in profile.shapes:
        if name not in by_name:
            raise UserError(f"{key}: input '{name}' is not an input of {model} (its inputs: "
                            f"{summarize(sorted(by_name))}); declare those, or select profile=model to take every "
                            "shape from the model")
    undeclared = [spec for spec in inputs if spec.name not in profile.shapes]
    if undeclared:
        first = undeclared[0]
        dyn = [axis for axis, d in enumerate(first.dims) if not _static(d)]
        more = f" (and {len(undeclared) - 1} more inputs)" if len(undeclared) > 1 else ""
        raise UserError(f"{key}: {model} input '{first.name}' {list(first.dims)} has dynamic dim(s) {dyn}{more}; "
                        f"declare them: {declare_hint(undeclared[:4], profile.batch)}")
    for spec in inputs:
        rng = profile.shapes[spec.name]
        for point in ("min", "opt", "max"):
            shape = rng.at(point)
            if len(shape) != len(spec.dims):
                raise UserError(f"{key}: profile.shapes.{spec.name}.{point} has rank {len(shape)} but {model} "
                                f"declares rank {len(spec.dims)} {list(spec.dims)}; give {len(spec.dims)} dims")
            for axis, (got, want) in enumerate(zip(shape, spec.dims)):
                if got <= 0:
                    raise UserError(f"{key}: profile.shapes.{spec.name}.{point}[{axis}] must be > 0, got {got}; "
                                    "give a positive size")
                if _static(want) and got != want:
                    raise UserError(f"{key}: profile.shapes.{spec.name}.{point}[{axis}] = {got} but {model} "
                                    f"fixes that dim to {want}; use {want} there (min, opt and max), or a model "
                                    "exported with that dim dynamic")
        _check_range(key, spec.name, rng)
