"""A multirun ends with one table, one JSON report and one JUnit file, one
entry per job, whatever launcher ran the jobs; a failing job makes the exit code non-zero and
a job with a bad config fails alone."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT


def _labels(report):
    return [t["label"] for t in report["targets"]]


def test_multirun_ends_with_one_table_and_one_report_with_an_entry_per_job(trtmake):
    code = trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16", "validation.iters=5,10")
    assert code == 0, trtmake.last_out + trtmake.last_err
    r = trtmake.report
    assert r["ok"] is True
    assert _labels(r) == ["tiny_cnn_fp32 [validation.iters=5]", "tiny_cnn_fp32 [validation.iters=10]",
                          "tiny_cnn_fp16 [validation.iters=5]", "tiny_cnn_fp16 [validation.iters=10]"]
    assert trtmake.last_out.count("trtmake summary") == 1
    for t in r["targets"]:
        assert t["exit_code"] == 0 and t["metrics"]["cosine_similarity"] > 0.999
        assert {s["status"] for s in t["stages"]} <= {"built", "cached"}
        assert t["job"]["in_process"]  # Hydra's basic launcher
        job_file = Path(t["job"]["dir"]) / "trtmake_result.json"  # each job wrote its own entry
        assert json.loads(job_file.read_text())["label"] == t["label"]
    # the second job of each target reuses every stage but validation
    assert [s["status"] for s in r["targets"][1]["stages"]] == ["cached"] * 4 + ["built"]


def test_multirun_exit_code_is_1_when_one_job_fails_an_assertion(trtmake):
    code = trtmake("-m", "target=tiny_cnn_fp32", "validation.min_throughput=1,1e12")
    assert code == 1
    r = trtmake.report
    assert r["ok"] is False and [t["ok"] for t in r["targets"]] == [True, False]
    assert "FAILED" in trtmake.last_out and "throughput" in trtmake.last_out


@pytest.mark.parametrize("sweep, bad_label, words", [
    ("target=tiny_cnn_fp32,nope", "nope", ["target=nope", "no such recipe", "tiny_cnn_fp32"]),
    ("validation.iters=5,many", "tiny_cnn_fp32 [validation.iters=many]", ["validation.iters", "many"]),
])
def test_multirun_job_with_a_config_error_fails_alone(trtmake, sweep, bad_label, words):
    args = ["-m", sweep] + ([] if sweep.startswith("target") else ["target=tiny_cnn_fp32"])
    assert trtmake(*args) == 2  # every failure is a user error
    r = trtmake.report
    assert len(r["targets"]) == 2
    good, bad = sorted(r["targets"], key=lambda t: t["error"] is not None)
    assert good["ok"] and good["exit_code"] == 0 and good["stages"][-1]["status"] in ("built", "cached")
    assert bad["label"] == bad_label and bad["exit_code"] == 2 and not bad["ok"]
    for word in words:
        assert word in bad["error"], (word, bad["error"])


def test_multirun_mixing_a_config_error_and_a_failed_assertion_exits_1(trtmake):
    assert trtmake("-m", "target=tiny_cnn_fp32,nope", "validation.min_throughput=1e12") == 1
    assert [t["exit_code"] for t in trtmake.report["targets"]] == [1, 2]


def test_glob_sweep_expands_to_every_matching_recipe(trtmake):
    assert trtmake("-m", "target=glob(tiny_cnn_fp*)") == 0
    expected = sorted(p.stem for p in (ROOT / "engine_recipes" / "target").glob("tiny_cnn_fp*.yaml"))
    assert sorted(t["name"] for t in trtmake.report["targets"]) == expected and len(expected) >= 2


def test_multirun_writes_one_junit_file_with_every_job(trtmake, tmp_path):
    junit = tmp_path / "junit.xml"
    code = trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16", "validation.min_throughput=1e12",
                   f"report.junit={junit}")
    assert code == 1
    root = ET.parse(junit).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name").split()[0] for s in suites] == ["tiny_cnn_fp32", "tiny_cnn_fp16"]
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites) == 2 * (5 + 2)
    assert int(root.get("failures")) == 2  # the throughput assertion of each job


def test_flags_may_follow_the_overrides(trtmake):
    assert trtmake("target=tiny_cnn_fp32,tiny_cnn_fp16", "--multirun") == 0
    assert len(trtmake.report["targets"]) == 2


def test_explain_multirun_lists_every_job(trtmake):
    assert trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16") == 0
    code = trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16", "validation.iters=7", command="explain")
    assert code == 0
    out = trtmake.last_out
    assert out.count("up to date") == 8 and out.count("config.iters: 30 -> 7") == 2


def test_a_launched_job_that_left_no_entry_is_a_failed_entry(tmp_path, monkeypatch):
    from trtmake.commands.build import exit_code
    from trtmake.sweep import ENTRY_FILE, Manifest, collect

    m = Manifest(tmp_path)
    m.launched(["target=tiny_cnn_fp32"], 0)
    m.launched(["target=tiny_cnn_fp16"], 1)
    m.launch_failed([1], RuntimeError("worker killed"))
    m.save()
    (tmp_path / "0_tiny_cnn_fp32").mkdir()
    (tmp_path / "0_tiny_cnn_fp32" / ENTRY_FILE).write_text(json.dumps(
        {"label": "tiny_cnn_fp32", "ok": True, "exit_code": 0, "error": None, "job": {"num": 0}}))
    entries = collect(tmp_path, ROOT)
    assert [e["label"] for e in entries] == ["tiny_cnn_fp32", "tiny_cnn_fp16"]
    assert entries[1]["exit_code"] == 1 and "worker killed" in entries[1]["error"]
    assert exit_code(entries) == 1


def _cli(tmp_path, *args, timeout=240):
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "trtmake", "-m", f"cache.dir={tmp_path / 'cache'}",
                           f"report.path={report}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    return proc, (json.loads(report.read_text()) if report.exists() else None)


@pytest.mark.slow
def test_joblib_jobs_run_in_other_processes_and_are_aggregated(tmp_path):
    proc, r = _cli(tmp_path, "target=tiny_cnn_fp32,tiny_cnn_fp16,nope", "validation.min_throughput=1,1e12",
                   "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("trtmake summary") == 1
    assert len(r["targets"]) == 6
    assert [(t["name"], t["exit_code"]) for t in r["targets"]] == [  # in sweep order
        ("tiny_cnn_fp32", 0), ("tiny_cnn_fp32", 1), ("tiny_cnn_fp16", 0), ("tiny_cnn_fp16", 1),
        ("nope", 2), ("nope", 2)]
    launched = [t["job"] for t in r["targets"] if t["job"]["num"] is not None]
    assert len(launched) == 4 and not any(j["in_process"] for j in launched)  # joblib's workers ran them


@pytest.mark.slow
def test_submitit_local_jobs_over_a_shared_cache_are_aggregated(tmp_path):
    proc, r = _cli(tmp_path, "target=tiny_cnn_fp32,tiny_cnn_fp16", "hydra/launcher=submitit_local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [t["name"] for t in r["targets"]] == ["tiny_cnn_fp32", "tiny_cnn_fp16"]
    assert all(t["ok"] and t["metrics"]["top1_agreement"] == 1.0 for t in r["targets"])
    sweep_dir = Path(r["targets"][0]["job"]["dir"]).parent
    assert (sweep_dir / ".submitit").is_dir()  # each job was a submitit job (its own process)
    assert len({t["job"]["pid"] for t in r["targets"]}) == 2 and not any(t["job"]["in_process"] for t in r["targets"])
    # the shared cache: the fp16 job reused the source and reference stages of the fp32 job
    # (or the other way round): every key was built once
    built = [s["key"] for t in r["targets"] for s in t["stages"] if s["status"] == "built"]
    assert len(built) == len(set(built))
