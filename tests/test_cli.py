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


def test_a_target_name_without_target_says_did_you_mean(trtmake):
    assert trtmake("tiny_cnn_fp32") == 2
    assert trtmake.last_err.strip() == "trtmake: error: tiny_cnn_fp32: not an override; did you mean target=tiny_cnn_fp32?"
    assert trtmake("nonsense", command="explain") == 2
    assert "nonsense: not a command or a KEY=VALUE override" in trtmake.last_err
    assert "Error parsing override" not in trtmake.last_err


def test_help_documents_options_and_exit_codes(capsys):
    from trtmake.cli import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("show=plan", "show=trtexec", "revalidate=true", "report.junit=PATH", "exit codes", "--version",
                 "project root"):
        assert word in out, word


def test_junit_path_is_printed(trtmake, tmp_path):
    junit = tmp_path / "j" / "junit.xml"
    assert trtmake("target=tiny_cnn_fp32", "validation.iters=2", f"report.junit={junit}") == 0
    assert f"junit: {junit}" in trtmake.last_out and junit.exists()


def test_a_missing_relative_path_from_a_subfolder_says_paths_resolve_from_the_root(trtmake, monkeypatch, tmp_path):
    sub = ROOT / "engine_recipes"
    monkeypatch.chdir(sub)
    assert trtmake("target=tiny_cnn_fp32", "model.path=no_such_model.onnx", "model.generator=null") == 2
    err = trtmake.last_err
    assert f"relative paths resolve from the project root {ROOT}" in err and len(err.strip().splitlines()) == 1
