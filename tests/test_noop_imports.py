"""An up-to-date `python -m trtmake target=...` imports neither onnx,
onnxruntime, tensorrt, numpy nor Hydra (the cached plan stands in for composition), nor a module
of trtmake.heavy.DEFERRED, and
`python -m trtmake` works. Checked through `-X importtime` in a subprocess: behaviour, not timing."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

from trtmake.heavy import DEFERRED

HEAVY = ("onnx", "onnxruntime", "tensorrt", "numpy", "hydra", "omegaconf", "torch")


def _run(tmp_path, *args, importtime=False):
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "trtmake", *args,
           f"cache.dir={tmp_path / 'cache'}", f"report.path={tmp_path / 'report.json'}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc, imported


def test_up_to_date_build_imports_no_heavy_package(tmp_path):
    proc, imported = _run(tmp_path, "target=tiny_cnn_fp32", importtime=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert {"onnx", "onnxruntime", "hydra"} <= imported  # the first run really built (sanity of the parsing)
    proc, imported = _run(tmp_path, "target=tiny_cnn_fp32", importtime=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    stages = json.loads((tmp_path / "report.json").read_text())["targets"][0]["stages"]
    assert {s["status"] for s in stages} == {"cached"}
    assert "trtmake.executor" in imported and "trtmake.plan_cache" in imported
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy
    # nor trtmake's own modules that only building or another command needs (the remote cache's
    # client, the HTML report, the int8 tooling...)
    deferred = sorted(m for m in imported if any(m == d or m.startswith(d + ".") for d in DEFERRED))
    assert deferred == [], deferred


def test_up_to_date_explain_imports_no_heavy_package(tmp_path):
    proc, _ = _run(tmp_path, "target=tiny_cnn_fp32")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc, imported = _run(tmp_path, "explain", "target=tiny_cnn_fp32", importtime=True)
    assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert not [m for m in imported if m.split(".")[0] in HEAVY]


def test_python_dash_m_trtmake_prints_usage():
    proc = subprocess.run([sys.executable, "-m", "trtmake", "help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "usage: trtmake" in proc.stdout


def test_process_entry_raises_the_gc_threshold_a_library_call_keeps_the_callers(monkeypatch):
    import gc

    from trtmake import cli

    before = gc.get_threshold()
    try:
        assert cli.main(["help"]) == 0
        assert gc.get_threshold() == before  # called as a library: the caller's GC settings stand
        monkeypatch.setattr(sys, "argv", ["trtmake", "help"])
        assert cli.main() == 0
        assert gc.get_threshold() == (cli.GC_GEN0_THRESHOLD, *before[1:]) != before
    finally:
        gc.set_threshold(*before)
