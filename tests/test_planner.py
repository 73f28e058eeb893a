"""trtmake.planner: one filter of the overrides for every Target, one stub for a failed job, and a
Request that travels pickled with the Hydra task function (app.Job)."""

from __future__ import annotations

import os
import pickle
from contextlib import ExitStack

from conftest import ROOT
from trtmake import app, planner
from trtmake.errors import UserError
from trtmake.planner import Request

ARGV = ["target=tiny_cnn_fp32", "cache.dir=CACHE", "report.path=r.json", "validation.iters=7", "show=plan"]


def test_a_composed_target_and_a_failed_jobs_stub_keep_the_same_overrides(tmp_path):
    argv = [o.replace("CACHE", str(tmp_path)) for o in ARGV]
    with ExitStack() as scope:
        composed = planner.composer(ROOT, scope)(argv, None)
    stub = planner.stub(argv, ROOT)
    assert composed.overrides == stub.overrides == ("validation.iters=7",)
    assert composed.label == stub.label == "tiny_cnn_fp32 [validation.iters=7]"
    assert composed.cfg["validation"]["iters"] == 7 and stub.cfg["model"]["name"] == "?"


def test_a_failed_job_keeps_a_traceback_only_for_an_internal_error():
    try:
        raise KeyError("boom")
    except KeyError as exc:
        crash = planner.failed_result(["target=tiny_cnn_fp32"], ROOT, exc)
    user = planner.failed_result(["target=tiny_cnn_fp32"], ROOT, UserError("model.path: not set"))
    assert crash.exit_code == 1 and "KeyError" in crash.error and "boom" in crash.data["traceback"]["text"]
    assert user.exit_code == 2 and user.error == "model.path: not set" and "traceback" not in user.data
    assert crash.target.name == user.target.name == "tiny_cnn_fp32"


def test_a_job_travels_pickled_with_its_request_and_nothing_it_collected():
    job = app.Job(Request("explain", ROOT, progress=True, cli_pid=os.getpid()))
    job.results.append(planner.failed_result(["target=a"], ROOT, UserError("bad")))
    job.sweep = {"entries": []}
    copy = pickle.loads(pickle.dumps(job))  # what joblib, submitit or Ray send to the process running a job
    assert copy.request == job.request and copy.request.explain and copy.request.in_cli_process()
    assert copy.results == [] and copy.plans == [] and copy.sweep is None
