"""`trtmake status` lists every target, up to date or stale with the first changed
key component, builds nothing, and imports neither onnxruntime nor TensorRT for targets that
are up to date."""

import json
import subprocess
import sys

from conftest import ROOT

RECIPES = sorted(p.stem for p in (ROOT / "engine_recipes" / "target").glob("*.yaml"))


def _status(trtmake, *args):
    code = trtmake(*args, command="status")
    return code, trtmake.last_out


def _rows(trtmake, *args):
    code, out = _status(trtmake, "--json", *args)
    return code, {r["target"]: r for r in json.loads(out)["targets"]}


def test_status_lists_every_recipe_and_builds_nothing(trtmake):
    code, rows = _rows(trtmake)
    assert sorted(rows) == RECIPES
    assert rows["tiny_cnn_fp32"]["state"] == "stale"
    assert rows["tiny_cnn_fp32"]["stage"] == "source" and "never built" in rows["tiny_cnn_fp32"]["why"]
    assert not [p for p in trtmake.cache_files() if "objects" in p.parts or "actions" in p.parts]


def test_status_after_a_build_says_up_to_date_only_for_that_target(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    code, out = _status(trtmake, "target=tiny_cnn_fp*")
    assert code == 0
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "up to date" in lines["tiny_cnn_fp32"]
    assert "stale" in lines["tiny_cnn_fp16"] and "never built" in lines["tiny_cnn_fp16"]


def test_status_names_the_first_changed_key_component(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32", "backend.onnxruntime.graph_optimization_level=basic")
    assert code == 0
    assert rows["tiny_cnn_fp32"]["state"] == "stale" and rows["tiny_cnn_fp32"]["stage"] == "build"
    assert "graph_optimization_level: all -> basic" in rows["tiny_cnn_fp32"]["why"]
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32", "validation.iters=7")
    assert rows["tiny_cnn_fp32"]["stage"] == "validate" and "config.iters: 30 -> 7" in rows["tiny_cnn_fp32"]["why"]


def test_status_with_a_bad_override_lists_errors_and_exits_2(trtmake):
    code, rows = _rows(trtmake, "target=tiny_cnn_fp*", "precision.colour=red")
    assert code == 2
    assert {r["state"] for r in rows.values()} == {"error"}
    assert all("precision.colour" in r["why"] for r in rows.values())


def test_status_of_an_unknown_target_is_one_line_exit_2(trtmake):
    code, _ = _status(trtmake, "target=nope")
    assert code == 2
    err = trtmake.last_err.strip()
    assert len(err.splitlines()) == 1 and "target=nope" in err and "tiny_cnn_fp32" in err


def test_status_imports_neither_onnxruntime_nor_tensorrt_for_up_to_date_targets(trtmake, tmp_path):
    assert trtmake("target=tiny_cnn_fp32") == 0
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "trtmake", "status", "target=tiny_cnn_fp32",
                           f"cache.dir={trtmake.cache}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "trtmake.executor" in imported  # the check really ran
    assert "onnxruntime" not in imported and "tensorrt" not in imported


def test_status_of_a_target_whose_last_validation_failed_says_up_to_date_and_failing(trtmake):
    budget = "validation.min_throughput=1e12"
    assert trtmake("target=tiny_cnn_fp32", budget) == 1
    code, rows = _rows(trtmake, "target=tiny_cnn_fp32", budget)
    row = rows["tiny_cnn_fp32"]
    assert row["state"] == "up to date" and row["passing"] is False and row["exit_code"] == 1
    assert "throughput >= 1000000000000.0 failed" in row["why"]
    code, out = _status(trtmake, "target=tiny_cnn_fp32", budget)
    assert "up to date" in out and "failing" in out
    _, rows = _rows(trtmake, "target=tiny_cnn_fp32")  # without the budget: validate is stale, verdict unknown
    assert rows["tiny_cnn_fp32"]["passing"] is None
    assert trtmake("target=tiny_cnn_fp32") == 0
    _, rows = _rows(trtmake, "target=tiny_cnn_fp32")
    assert rows["tiny_cnn_fp32"]["state"] == "up to date" and rows["tiny_cnn_fp32"]["passing"] is True


def test_status_says_a_shared_error_once(trtmake):
    import importlib.util

    import pytest

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    code, out = _status(trtmake, "target=tiny_cnn_*", "backend=tensorrt")
    flat = " ".join(out.split())
    assert flat.count("tensorrt is not installed") == 1 and flat.count("the same as for tiny_cnn_") == 2, out
