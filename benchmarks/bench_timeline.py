"""Where one trtmake run's wall time goes: a timeline of the CLI's phases and of every stage.

    python benchmarks/bench_timeline.py target=resnet50_fp32 cache.dir=/tmp/tl     # any trtmake arguments

Runs `trtmake.cli.main` in this process with `perf_counter` marks around Hydra's composition,
each stage (its key check, run and publish) and the report, and prints them: what the full-build overhead's
overhead figures in docs/performance.md are split into. Process start-up and interpreter
shutdown are outside the marks (compare with the wall time of `python -m trtmake ...`).
Each mark has the wall time and this process's CPU time: on a machine shared with other jobs
the CPU time is the steadier figure. trtmake's fixed cost on a first build is the time at
`> stage source` (imports, Hydra's composition, planning: before the first stage starts).
"""

from __future__ import annotations

import functools
import sys
import time

T0 = time.perf_counter()
C0 = time.process_time()
MARKS: list[tuple[float, float, str]] = []


def _mark(label: str) -> None:
    MARKS.append((time.perf_counter() - T0, time.process_time() - C0, label))


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
        print("    wall  (+   step)     cpu   (this process: robust to other jobs on the machine)", file=sys.stderr)
        for at, cpu, label in MARKS:
            print(f"{at:8.3f} s  (+{at - previous:6.3f})  {cpu:6.3f} s  {label}", file=sys.stderr)
            previous = at


if __name__ == "__main__":
    raise SystemExit(main())
