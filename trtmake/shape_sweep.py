"""The shapes of `validation.sweep`: a grid of (batch, seq) each placed in the profile that holds it.

A grid point sets axis 0 of every input to `batch`, and axis 1 to `seq` for the inputs whose
axis 1 is dynamic in the profile (min < max: a sequence length); every other dim stays at the
profile's opt. An empty `batch` (or `seq`) list keeps that axis at opt. A point no profile holds
is refused (a UserError naming validation.sweep), never clipped: a figure at a shape other than
the one asked for would mislead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trtmake.errors import UserError
from trtmake.profiles import Profile, Shape

KEY = "validation.sweep"


@dataclass(frozen=True)
class SweepPoint:
    batch: int
    seq: int | None  # axis 1 of the sequence inputs; None when the profile has none
    profile: int  # index of the profile that holds it (the first that does)
    shapes: dict[str, Shape]


def sequence_inputs(profile: Profile) -> list[str]:
    """Inputs whose axis 1 is dynamic in the profile (min < max)."""
    return [n for n, r in profile.shapes.items() if len(r.min) > 1 and r.min[1] < r.max[1]]


def shapes_at(profile: Profile, batch: int | None, seq: int | None) -> dict[str, Shape] | None:
    """Every input's shape at (batch, seq) in `profile`, or None when one falls outside it."""
    seq_inputs = set(sequence_inputs(profile))
    out: dict[str, Shape] = {}
    ranges = dict(profile.shapes)
    if not ranges and profile.batch is not None:  # planning: only the batch range is declared
        ranges = {"<batch>": profile.batch}
    for name, rng in ranges.items():
        shape = list(rng.opt)
        if batch is not None and shape:
            shape[0] = batch
        if seq is not None and name in seq_inputs:
            shape[1] = seq
        if not all(lo <= d <= hi for d, lo, hi in zip(shape, rng.min, rng.max)):
            return None
        out[name] = tuple(shape)
    return out


def grid(profiles: tuple[Profile, ...], sweep: dict[str, Any] | None) -> list[SweepPoint]:
    """The sweep's points in grid order (batch-major); [] when both lists are empty."""
    batches = list((sweep or {}).get("batch") or [])
    seqs = list((sweep or {}).get("seq") or [])
    if not batches and not seqs:
        return []
    if seqs and not any(sequence_inputs(p) for p in profiles):
        raise UserError(f"{KEY}.seq: no input of profile {profiles[0].name!r} has a dynamic axis 1 (a sequence "
                        f"length); leave {KEY}.seq empty")
    points = []
    for batch in batches or [None]:
        for seq in seqs or [None]:
            point = _place(profiles, batch, seq)
            if point is None:
                where = ", ".join(f"{p.name}: {_ranges(p)}" for p in profiles)
                raise UserError(f"{KEY}: batch {batch}, seq {seq} lies outside every profile ({where}); "
                                f"drop it from {KEY}.batch/seq or widen a profile")
            points.append(point)
    return points


def _place(profiles: tuple[Profile, ...], batch: int | None, seq: int | None) -> SweepPoint | None:
    for index, profile in enumerate(profiles):
        shapes = shapes_at(profile, batch, seq)
        if shapes is None:
            continue
        seq_inputs = sequence_inputs(profile)
        at_seq = shapes[seq_inputs[0]][1] if seq_inputs else None
        at_batch = next(iter(shapes.values()))[0] if shapes else batch
        return SweepPoint(int(at_batch), at_seq, index, {n: s for n, s in shapes.items() if n != "<batch>"})
    return None


def _ranges(profile: Profile) -> str:
    """`batch 1-8, seq 8-64` of a profile, for messages."""
    rngs = list(profile.shapes.values()) or ([profile.batch] if profile.batch else [])
    if not rngs:
        return "no inputs"
    first = rngs[0]
    text = f"batch {first.min[0]}-{first.max[0]}"
    seq = sequence_inputs(profile)
    if seq:
        r = profile.shapes[seq[0]]
        text += f", seq {r.min[1]}-{r.max[1]}"
    return text
