"""`show=...`: print what trtmake would do, without doing it (Polygraphy's --gen-script idea)."""

from __future__ import annotations

from trtmake.errors import UserError
from trtmake.target import Target

CHOICES = ("plan",)


def show(target: Target, what: str) -> None:
    import json

    if what == "plan":
        print(json.dumps(target.cfg, indent=2, sort_keys=True))
        return
    raise UserError(f"show={what}: unknown; choose one of {list(CHOICES)}")
