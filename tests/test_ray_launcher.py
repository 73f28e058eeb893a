"""The README's Ray example, run for real: `hydra/launcher=ray` over a local Ray instance that
the launcher starts itself (`address=local`), and over a `ray start` head in its own process
group (the README's cluster case, on one machine). Each job is a Ray task in a Ray worker
process; the CLI still ends with one report, one entry per job, and the usual exit code.

Only the CLI's observable behaviour is checked (exit code, report JSON, the cache, Ray's own
log files), not how trtmake hands its run state to the jobs. Skipped without the `ray` extra."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT
from fault_helpers import cli_env

pytest.importorskip("hydra_plugins.hydra_ray_launcher")

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_tmp():
    # Ray's session dir holds unix sockets (at most 107 bytes of path), so not under tmp_path
    path = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env() -> dict[str, str]:
    """No dashboard, no usage stats, no auth token written to ~/.ray; the Ray workers import this
    checkout's trtmake."""
    return cli_env(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _own_group(argv, **kw) -> subprocess.Popen:
    """A process in its own process group, which the Ray processes it starts join: killing that
    group ends them and nothing else."""
    return subprocess.Popen(argv, cwd=ROOT, env=_env(), text=True, start_new_session=True, **kw)


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _trtmake(tmp_path, *args, timeout=300):
    """The CLI in its own process, its cache and report under tmp_path: (pid, exit code, output, report)."""
    report = tmp_path / "report.json"
    proc = _own_group([sys.executable, "-m", "trtmake", "-m", f"cache.dir={tmp_path / 'cache'}",
                       f"report.path={report}", "hydra/launcher=ray", *args],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)  # the CLI and a Ray instance it started
        raise
    r = json.loads(report.read_text()) if report.exists() else None
    return proc.pid, proc.returncode, out + err, r


def _ray_cli(tmp_path, ray_tmp, *args):
    """The CLI over a local Ray instance of 2 CPUs that the launcher starts (never a cluster
    that happens to run on this machine)."""
    return _trtmake(tmp_path, "hydra.launcher.ray.init.address=local", "+hydra.launcher.ray.init.num_cpus=2",
                    "+hydra.launcher.ray.init.include_dashboard=false",
                    f"+hydra.launcher.ray.init._temp_dir={ray_tmp}", *args)


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head` of 2 CPUs, as on a cluster's head node: its workers have the
    environment of `ray start`, not the CLI's. Yields (address, its temp dir)."""
    tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp / "head.log"
    with open(log, "w") as out:
        head = _own_group([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",  # `ray start`
                           "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                           f"--port={port}", f"--temp-dir={tmp / 't'}"],
                          stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", tmp / "t"
    finally:
        _kill_group(head)
        shutil.rmtree(tmp, ignore_errors=True)


def _ray_worker_pids(ray_tmp: Path) -> set[int]:
    """The pids of the Ray workers of every session under ray_tmp, from the names of their log
    files (logs/worker-<worker id>-<job id>-<pid>.out)."""
    return {int(p.stem.rsplit("-", 1)[1]) for p in ray_tmp.glob("session_*/logs/worker-*.out")}


def _assert_ran_as_ray_tasks(targets, cli_pid, ray_tmp):
    jobs = [t["job"] for t in targets]
    assert all(j["num"] is not None for j in jobs)  # launched, none done by the CLI from a plan
    assert not any(j["in_process"] for j in jobs) and cli_pid not in {j["pid"] for j in jobs}
    assert {j["pid"] for j in jobs} <= _ray_worker_pids(ray_tmp)  # each pid was a Ray worker


def test_ray_jobs_run_as_ray_tasks_and_are_aggregated(tmp_path, ray_tmp):
    cli_pid, code, out, r = _ray_cli(tmp_path, ray_tmp, "target=tiny_cnn_fp32,tiny_cnn_fp16")
    assert code == 0, out
    assert out.count("trtmake summary") == 1
    assert r["ok"] is True
    assert [t["name"] for t in r["targets"]] == ["tiny_cnn_fp32", "tiny_cnn_fp16"]
    assert all(t["exit_code"] == 0 and t["metrics"]["top1_agreement"] == 1.0 for t in r["targets"])
    _assert_ran_as_ray_tasks(r["targets"], cli_pid, ray_tmp)
    for t in r["targets"]:  # each Ray task wrote its own entry into its job dir
        assert json.loads((Path(t["job"]["dir"]) / "trtmake_result.json").read_text())["label"] == t["label"]


def test_a_failed_ray_job_exits_1_and_leaves_the_other_entry_intact(tmp_path, ray_tmp):
    cli_pid, code, out, r = _ray_cli(tmp_path, ray_tmp, "target=tiny_cnn_fp32", "validation.min_throughput=1,1000000000000")
    assert code == 1, out
    assert r["ok"] is False
    ok, failed = r["targets"]
    assert ok["label"] == "tiny_cnn_fp32 [validation.min_throughput=1]" and ok["ok"] and ok["exit_code"] == 0
    assert ok["metrics"]["cosine_similarity"] > 0.999
    assert failed["label"] == "tiny_cnn_fp32 [validation.min_throughput=1000000000000]"
    assert not failed["ok"] and failed["exit_code"] == 1 and failed["error"] is None  # an assertion, not a crash
    assert "FAILED" in out and "throughput" in out
    _assert_ran_as_ray_tasks(r["targets"], cli_pid, ray_tmp)


def test_ray_jobs_run_on_a_ray_start_cluster(tmp_path, ray_head):
    address, ray_tmp = ray_head
    # object_store_memory=null: hydra-ray-launcher 1.2.2 passes object_store_memory to every
    # ray.init, which Ray refuses when connecting to a running cluster
    cli_pid, code, out, r = _trtmake(tmp_path, "target=tiny_cnn_fp32,tiny_cnn_fp16",
                                     f"hydra.launcher.ray.init.address={address}",
                                     "+hydra.launcher.ray.init.object_store_memory=null",
                                     "+hydra.launcher.ray.remote.num_cpus=1")
    assert code == 0, out
    assert [(t["name"], t["exit_code"]) for t in r["targets"]] == [("tiny_cnn_fp32", 0), ("tiny_cnn_fp16", 0)]
    _assert_ran_as_ray_tasks(r["targets"], cli_pid, ray_tmp)
    # the jobs built into the cache named on the command line, not one of the workers' own
    built = {s["key"] for t in r["targets"] for s in t["stages"] if s["status"] == "built"}
    assert built and built <= {p.stem for p in (tmp_path / "cache" / "actions").glob("*/*.json")}
