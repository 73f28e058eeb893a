"""Helpers shared by the benchmarks: subprocess timing, the pre-change code for
before/after rows, load average, and writing benchmarks/results/<name>.json."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PYCACHE = Path(tempfile.gettempdir()) / "trtmake-bench-pycache"


def bench_env(extra: dict[str, str] | None = None, pythonpath: Path | None = None) -> dict[str, str]:
    """A user's environment: bytecode caching on (this sandbox sets PYTHONDONTWRITEBYTECODE=1,
    which recompiles every module on each start; installed packages always have .pyc files)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.pop("TRTMAKE_CACHE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env.update(extra or {})
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path = ROOT, check: bool = True, timeout: float = 3600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def report_entry(cmd: list[str], report: Path) -> tuple[dict[str, Any], float, int]:
    """Run a trtmake command that writes `report` (as a user runs it, in a subprocess): its first
    target entry, the wall seconds and the exit code; exits naming the command if no report came."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if not report.exists():
        sys.exit(f"{' '.join(cmd)} wrote no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(report.read_text())["targets"][0], seconds, proc.returncode


def timed(cmd: list[str], env: dict[str, str], runs: int = 7, cwd: Path = ROOT, warmup: int = 1,
          check: bool = True) -> dict[str, float]:
    """Median and min wall seconds of `runs` process runs (after `warmup` untimed ones)."""
    for _ in range(warmup):
        run(cmd, env, cwd, check)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run(cmd, env, cwd, check)
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": runs}


@contextmanager
def work_dir(given: Path | None, prefix: str) -> Iterator[Path]:
    """The benchmark's scratch folder: `given` (kept), else a temporary one removed at the end."""
    if given is not None:
        yield given
        return
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


BEFORE = "HEAD"  # the revision of "before" rows; a benchmark's --before sets it


def before_tree() -> Path:
    """The code at revision BEFORE (default HEAD, the committed code) exported to a temp folder:
    the 'before' of before/after rows. `git archive` reads the repository and changes nothing.
    A BEFORE that is a folder is taken as that code already exported (a machine without the
    repository's history, e.g. the lent GPU machine)."""
    if (Path(BEFORE) / "trtmake" / "__init__.py").exists():
        return Path(BEFORE).resolve()
    rev = subprocess.run(["git", "rev-parse", "--short", BEFORE], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    out = Path(tempfile.gettempdir()) / f"trtmake-bench-before-{rev}"
    if not (out / "trtmake" / "__init__.py").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "loadavg_start": loadavg()}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_end": loadavg(), **data}
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def table(title: str, columns: list[str], rows: list[list[Any]]):
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[_fmt(v) for v in r])
    Console(width=160).print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def start_moto_s3() -> tuple[Any, str]:
    """moto's S3 server on a free port of 127.0.0.1 (no network): (the server, to stop; its
    endpoint URL). Dummy credentials go into this process's environment for s3fs and boto3."""
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"
