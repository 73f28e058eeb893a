"""Where one trtmake run's wall time goes: a timeline of the CLI's phases and of every stage.

    python benchmarks/bench_timeline.py target=resnet50_fp32 cache.dir=/tmp/tl     # any trtmake arguments

Runs `trtmake.cli.main` in this process with `perf_counter` marks around Hydra's composition,
each stage (its key check, run and publish) and the report, and prints them: what goal 4's
overhead figures in docs/performance.md are split into. Process start-up and interpreter
shutdown are outside the marks (compare with the wall time of `python -m trtmake ...`).
"""

from __future__ import annotations

import functools
import sys
import time

T0 = time.perf_counter()
MARKS: list[tuple[float, str]] = []


def _mark(label: str) -> None:
    MARKS.append((time.perf_counter() - T0, label))


def _timed(owner, name: str, label) -> None:
    real = getattr(owner, name)

    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        what = label(*args) if callable(label) else label
        _mark(f"> {what}")
        try:
            return real(*args, **kwargs)
        finally:
            _mark(f"< {what}")

    setattr(owner, name, wrapper)


def main() -> int:
    from trtmake import cli, executor

    _mark("trtmake.cli imported")
    _timed(cli, "_compose_and_run", "Hydra: import, compose, run the job")
    _timed(cli, "_run_plan", "cached plan: run the target")
    _timed(cli, "_finish_single", "report (table, JSON)")
    _timed(executor, "_build_stage", lambda stage, *a: f"stage {stage.name}")
    try:
        return cli.main(sys.argv[1:])
    finally:
        _mark("main returned")
        previous = 0.0
        for at, label in MARKS:
            print(f"{at:8.3f} s  (+{at - previous:6.3f})  {label}", file=sys.stderr)
            previous = at


if __name__ == "__main__":
    raise SystemExit(main())
