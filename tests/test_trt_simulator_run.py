"""tests/trt_double/run.py: trtmake in-process with the simulator installed, from any directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent / "trt_double" / "run.py"


def test_run_installs_the_simulator_and_returns_trtmakes_exit_code(monkeypatch):
    import polygraphy.cuda.cuda as pcuda

    import trtmake.cli
    from trt_double import FakeCudart
    from trt_double.run import main

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # restored after the test
    monkeypatch.setattr(pcuda, "G_CUDA", None)
    seen = {}

    def fake_main(argv):
        import tensorrt

        seen.update(argv=argv, version=tensorrt.__version__, handle=pcuda.wrapper().handle)
        return 3

    monkeypatch.setattr(trtmake.cli, "main", fake_main)
    assert main(["--tensorrt", "11.4.0.106", "--", "target=tiny_cnn_fp32", "backend=tensorrt"]) == 3
    assert seen["argv"] == ["target=tiny_cnn_fp32", "backend=tensorrt"] and seen["version"] == "11.4.0.106"
    assert isinstance(seen["handle"], FakeCudart)


def test_run_works_from_another_directory(tmp_path):
    done = subprocess.run([sys.executable, str(RUN), "--tensorrt", "10.13.3.9", "--", "help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "usage: trtmake" in done.stdout + done.stderr


def test_run_refuses_an_unknown_release(tmp_path):
    done = subprocess.run([sys.executable, str(RUN), "--tensorrt", "9.0", "--", "help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "invalid choice: '9.0'" in done.stderr
