"""The command line itself: --version, --help, and mistakes in how trtmake is called."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from conftest import ROOT

from trtmake import __version__


def test_version_is_trtmakes_and_names_the_toolchain():
    proc = subprocess.run([sys.executable, "-m", "trtmake", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, toolchain = proc.stdout.splitlines()[:2]
    assert first == f"trtmake {__version__}"
    assert "Hydra" not in proc.stdout
    assert f"onnxruntime {version('onnxruntime')}" in toolchain and "tensorrt" in toolchain
