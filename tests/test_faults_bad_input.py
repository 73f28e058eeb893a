"""Bad inputs end as one line naming the file or key, exit code 2, and nothing added
to the cache (no object, no action record, no stat-cache file)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from fault_helpers import ROOT, audit_objects, audit_records, cli_argv, cli_env, records, stored, stray_temp_files

pytestmark = pytest.mark.faults

FROM_FILE = ("target=tiny_cnn_fp32", "model.generator=null")


def _tiny() -> onnx.ModelProto:
    from trtmake.models import build

    return build("tiny_cnn", {"seed": 0})


def _empty(d: Path) -> Path:
    (d / "m.onnx").write_bytes(b"")
    return d / "m.onnx"


def _random(d: Path) -> Path:
    (d / "m.onnx").write_bytes(os.urandom(4096))
    return d / "m.onnx"


def _truncated_mid(d: Path) -> Path:
    data = _tiny().SerializeToString()
    (d / "m.onnx").write_bytes(data[: len(data) // 2])
    return d / "m.onnx"


def _truncated_after_graph(d: Path) -> Path:
    """Cut at a field boundary: still parses (protobuf fields are optional), but has no opset."""
    model = _tiny()
    head = onnx.ModelProto()
    head.ir_version, head.producer_name = model.ir_version, model.producer_name
    head.graph.CopyFrom(model.graph)
    data, cut = model.SerializeToString(), head.SerializeToString()
    assert data.startswith(cut) and len(cut) < len(data)
    (d / "m.onnx").write_bytes(cut)
    return d / "m.onnx"


def _missing_external_data(d: Path) -> Path:
    onnx.save(_tiny(), str(d / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.weights", size_threshold=0)
    (d / "m.weights").unlink()
    return d / "m.onnx"


def _opset_99(d: Path) -> Path:
    model = _tiny()
    model.opset_import[0].version = 99
    onnx.save(model, str(d / "m.onnx"))
    return d / "m.onnx"


def _input_of(elem_type: int):
    def make(d: Path) -> Path:
        graph = helper.make_graph([helper.make_node("Identity", ["s"], ["o"])], "g",
                                  [helper.make_tensor_value_info("s", elem_type, [1])],
                                  [helper.make_tensor_value_info("o", elem_type, [1])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(d / "m.onnx"))
        return d / "m.onnx"
    return make


BAD_FILES = {
    "empty-file": (_empty, "is empty"),
    "random-bytes": (_random, "not a readable ONNX model"),
    "truncated-mid": (_truncated_mid, "not a readable ONNX model"),
    "truncated-after-graph": (_truncated_after_graph, "fails the ONNX checker"),
    "missing-external-data": (_missing_external_data, "m.weights"),
    "opset-99": (_opset_99, "opset"),
    "string-input": (_input_of(TensorProto.STRING), "input 's'"),
    "complex-input": (_input_of(TensorProto.COMPLEX64), "input 's'"),
}


def assert_user_error(trtmake, code: int, *names: str) -> str:
    """Exit 2, one line on stderr naming `names`, nothing in the cache."""
    assert code == 2, (trtmake.last_out[-2000:], trtmake.last_err[-2000:])
    lines = [line for line in trtmake.last_err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("trtmake: error: "), lines
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert_nothing_cached(trtmake.cache)
    return lines[0]


def assert_nothing_cached(cache: Path) -> None:
    assert stored(cache) == []
    assert not (cache / "stat").exists() or not any((cache / "stat").iterdir())
    assert not (cache / "targets").exists() or not any((cache / "targets").iterdir())


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_model_file_is_one_line_exit_2_and_caches_nothing(trtmake, tmp_path, case):
    make, says = BAD_FILES[case]
    (tmp_path / "in").mkdir()
    path = make(tmp_path / "in")
    line = assert_user_error(trtmake, trtmake(*FROM_FILE, f"model.path={path}"), "m.onnx", says)
    assert "model" in line  # names the key too (model.path / model)


@pytest.mark.parametrize("override,says", [
    ("profile.shapes.input.opt=[1,3,64,64]", "on axis 2, got 32, 64, 32"),  # opt > max: found at planning
    ("profile.shapes.input.max=[4,3,32]", "ranks 4, 4, 3"),
    ("profile.shapes.input.min=[2,3,32,32]", "min <= opt <= max"),
])
def test_profile_that_contradicts_the_model_caches_nothing(trtmake, override, says):
    assert_user_error(trtmake, trtmake("target=tiny_cnn_fp32", override), "profile", says)


def test_profile_that_contradicts_a_cached_model_adds_nothing(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    before = sorted(stored(trtmake.cache))
    assert trtmake("target=tiny_cnn_fp32", "profile.shapes.input.opt=[1,3,64,64]") == 2
    assert sorted(stored(trtmake.cache)) == before


def test_interpolation_cycle_names_the_key(trtmake):
    assert_user_error(trtmake, trtmake("target=tiny_cnn_fp32", "model.name=${model.name}"), "model.name")


def test_same_target_twice_in_a_sweep_is_refused(trtmake):
    code = trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp32")
    assert code == 2
    assert "target" in trtmake.last_err and "twice" in trtmake.last_err
    assert_nothing_cached(trtmake.cache)


# -- storage: read-only cache, full disk (real processes) -------------------------------------

def _run(cache: Path, report: Path, *args: str, prefix: tuple[str, ...] = (), **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *cli_argv(cache, report, *args)], cwd=ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=120, **kw)


def _one_line(proc: subprocess.CompletedProcess, *names: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("trtmake: error: "), lines
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def _read_only(*folders: Path) -> tuple[str, ...]:
    """A command prefix that runs the rest in a private mount namespace where `folders` are read-only
    (root is not stopped by chmod; a read-only bind mount stops everyone, and leaks nowhere)."""
    mounts = " && ".join(f"mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}'" for d in folders)
    return ("unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh")


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs unshare -m (CAP_SYS_ADMIN) for a read-only bind mount")


@needs_mount
def test_read_only_store_inside_the_cache_is_one_line_exit_2(tmp_path):
    """A cache whose objects/ and actions/ are a read-only mount (e.g. a shared cache published
    read-only): refused before any stage runs, naming the folder."""
    cache = tmp_path / "cache"
    for sub in ("objects", "actions"):
        (cache / sub).mkdir(parents=True)
    proc = _run(cache, tmp_path / "r.json", "target=tiny_cnn_fp32",
                prefix=_read_only(cache / "objects", cache / "actions"))
    _one_line(proc, "cache.dir", str(cache / "objects"), "read-only")
    assert_nothing_cached(cache)


@pytest.mark.parametrize("how", ["read-only-mount", "file-in-place"])
def test_unwritable_cache_dir_is_one_line_exit_2(tmp_path, how):
    cache = tmp_path / "cache"
    if how == "file-in-place":
        cache.write_text("not a folder")
        prefix: tuple[str, ...] = ()
    else:
        if not _can_mount():
            pytest.skip("needs unshare -m")
        cache.mkdir()
        prefix = _read_only(cache)
    proc = _run(cache, tmp_path / "r.json", "target=tiny_cnn_fp32", prefix=prefix)
    _one_line(proc, "cache.dir", str(cache))
    if cache.is_dir():
        assert_nothing_cached(cache)


def _file_size_limit(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("limit,fails_in", [(8000, "source"), (18000, "build")])
def test_full_disk_is_one_line_exit_2_and_leaves_nothing_partial(tmp_path, limit, fails_in):
    """RLIMIT_FSIZE stands in for a full disk: the generated model (~17 KB) cannot be written at
    8 KB, the onnxruntime engine (~19 KB, written by ORT's C++ code) not at 18 KB."""
    cache = tmp_path / "cache"
    proc = _run(cache, tmp_path / "r.json", "target=tiny_cnn_fp16", preexec_fn=_file_size_limit(limit))
    _one_line(proc, "cache.dir", "file size limit exceeded")
    report = json.loads((tmp_path / "r.json").read_text())
    st = {s["name"]: s["status"] for s in report["targets"][0]["stages"]}
    assert st[fails_in] == "failed"
    audit_objects(cache)  # whatever is stored is whole
    audit_records(cache)
    assert stray_temp_files(cache) == [] and list((cache / "tmp").iterdir()) == []
    done = {rec["stage"] for rec in records(cache).values()}
    assert fails_in not in done and "validate" not in done
    if fails_in == "source":
        assert_nothing_cached(cache)
    # the disk has room again: the same command finishes, reusing what was stored
    again = _run(cache, tmp_path / "r.json", "target=tiny_cnn_fp16")
    assert again.returncode == 0, again.stdout[-2000:]
    statuses = {s["name"]: s["status"] for s in json.loads((tmp_path / "r.json").read_text())["targets"][0]["stages"]}
    assert all(statuses[s] == "cached" for s in done)
