"""Every shipped target builds, validates and passes its assertions with backend=tensorrt on each
simulated release, run as a user runs it: `tests/trt_double/run.py --tensorrt VERSION -- ...`
in its own process. They share one cache with test_all_targets.py, so what does not depend on the
backend (source, calibration, reference) is built once; build and validate run per release.
Timed runs are cut to 3 without warm-up: no shipped recipe asserts a latency."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = sorted(p.stem for p in (ROOT / "engine_recipes" / "target").glob("*.yaml"))

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("release", ["10.13.3.9", "11.4.0.106"])
def test_every_shipped_target_passes_on_tensorrt(release, shipped_cache, tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "trt_double" / "run.py"), "--tensorrt", release, "--",
         "-m", "target=glob(*)", "backend=tensorrt", "validation.iters=3", "validation.warmup=0",
         f"cache.dir={shipped_cache}", f"report.path={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    targets = json.loads(report.read_text())["targets"]
    failed = {t["name"]: t["error"] or [a for a in t["assertions"] if not a["passed"]] for t in targets if not t["ok"]}
    assert not failed, failed
    assert sorted(t["name"] for t in targets) == TARGETS
    for t in targets:
        assert t["backend"] == "tensorrt" and t["assertions"] and all(a["passed"] for a in t["assertions"])
        assert release.rsplit(".", 1)[0] in t["backend_reason"]
    assert proc.returncode == 0, proc.stderr[-2000:]
