"""Every shipped target builds and passes its own assertions on a fresh cache, as the README's
`trtmake -m 'target=glob(*)'` promises. One sweep in the session's shipped-target cache, which the
TensorRT end-to-end tests reuse (the most expensive test of the suite: every recipe is built once;
shared sources and reference outputs are built once).
Timed runs are cut to 3 without warm-up: no shipped recipe asserts a latency, and accuracy is
measured on every validation sample whatever the number of timed runs. Measured here: 18.8 min
wall on 2 cores shared with other jobs (8.5 min of CPU), most of it EfficientNet-Lite0 INT8's
auto_exclude search."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_every_shipped_target_builds_and_passes_on_a_fresh_cache(tmp_path, shipped_cache):
    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRTMAKE_CACHE", None)
    proc = subprocess.run([sys.executable, "-m", "trtmake", "-m", "target=glob(*)", "validation.iters=3", "validation.warmup=0",
                           f"cache.dir={shipped_cache}",
                           f"report.path={report}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    entries = json.loads(report.read_text())["targets"]
    failed = {e["name"]: e["error"] or [a for a in e["assertions"] if not a["passed"]] for e in entries if not e["ok"]}
    assert not failed, failed
    shipped = {p.stem for p in (ROOT / "engine_recipes" / "target").glob("*.yaml")}
    assert {e["name"] for e in entries} == shipped
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
