"""A user's own ONNX file builds with one line: `trtmake model=onnx model.path=FILE [precision=P]`.

The corpus (tests/own_model_corpus.py) holds files shaped like those other tools export (IR 3
with weights as inputs, opsets 7-17, '/', ':' and '.' in names, static and dynamic batch,
several inputs, int64 ids, NHWC, [1, C, 1, 1] outputs, external data); each builds and
validates at fp32, fp16 and int8 through the CLI as a user runs it, or fails with exit 2 and
one line that says what to do, leaving nothing in the cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest

import own_model_corpus as corpus
from conftest import ROOT

PRECISIONS = ("fp32", "fp16", "int8")


class Cli:
    """trtmake.cli.main as a user runs it, on one cache shared by the module's builds."""

    def __init__(self, cache: Path, report: Path):
        self.cache, self.report_path = cache, report

    def __call__(self, capsys, *args: str, cache: Path | None = None) -> tuple[int, str]:
        from trtmake.cli import main

        self.report_path.unlink(missing_ok=True)
        code = main([*args, f"cache.dir={cache or self.cache}", f"report.path={self.report_path}"])
        return code, capsys.readouterr().err

    @property
    def report(self) -> dict:
        return json.loads(self.report_path.read_text())["targets"][0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {name: build(folder) for name, build in corpus.CORPUS.items()}


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    work = tmp_path_factory.mktemp("trtmake")
    return Cli(work / "cache", work / "report.json")


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TRTMAKE_CACHE", raising=False)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0]) < 320, err
    return lines[0]


def _records(cache: Path) -> list[Path]:
    return sorted((cache / "actions").rglob("*.json")) if cache.exists() else []


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", sorted(corpus.CORPUS))
def test_own_file_builds_and_validates_in_one_line(name, precision, files, cli, capsys):
    code, err = cli(capsys, "model=onnx", f"model.path={files[name]}", f"precision={precision}")
    t = cli.report
    assert code == 0, (t["error"], t["assertions"], err)
    assert t["name"] == files[name].stem and t["model"]["name"] == files[name].stem
    assert "synthetic_weights" not in t["model"]  # trtmake did not make these weights
    assert [s["status"] for s in t["stages"]] and all(s["status"] in ("built", "cached") for s in t["stages"])
    assert t["assertions"] and all(a["passed"] for a in t["assertions"])
    assert t["metrics"]["cosine_similarity"] >= 0.99


def _graph(cli: Cli) -> onnx.ModelProto:
    return onnx.load(cli.report["graph"]["path"], load_external_data=False)


def test_weights_listed_as_inputs_are_dropped_and_int8_upgrades_the_opset(files, cli, capsys):
    path = files["classic_caffe2"]
    assert len(onnx.load(str(path)).graph.input) == 6  # data_0 and five weights
    assert cli(capsys, "model=onnx", f"model.path={path}")[0] == 0
    steps = cli.report["source"]["normalized"]["steps"]
    assert any("removed 5 graph inputs that are initializers" in s for s in steps), steps
    assert [i.name for i in _graph(cli).graph.input] == ["data_0"]
    assert cli(capsys, "model=onnx", f"model.path={path}", "precision=int8")[0] == 0
    int8 = _graph(cli)
    assert max(o.version for o in int8.opset_import if o.domain in ("", "ai.onnx")) >= 13
    weights = {t.name for t in int8.graph.initializer}
    per_channel = [n for n in int8.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights
                   and len(onnx.numpy_helper.to_array(next(t for t in int8.graph.initializer
                                                           if t.name == n.input[1])).shape) == 1
                   and onnx.numpy_helper.to_array(next(t for t in int8.graph.initializer
                                                       if t.name == n.input[1])).size > 1]
    assert per_channel, "int8 weights should be per-channel once the opset is 13"


def test_external_data_stays_external_and_old_opset_int8_goes_per_tensor_with_a_warning(files, cli, capsys):
    path = files["external_opset11"]
    assert cli(capsys, "model=onnx", f"model.path={path}")[0] == 0
    assert cli.report["graph"]["path"] == str(path)  # the weights are read in place, never copied
    assert cli(capsys, "model=onnx", f"model.path={path}", "precision=int8")[0] == 0
    t = cli.report
    assert any("per-tensor" in w for w in t["warnings"]), t["warnings"]
    int8 = _graph(cli)
    scales = {t.name: onnx.numpy_helper.to_array(t) for t in int8.graph.initializer}
    dq = [n for n in int8.graph.node if n.op_type == "DequantizeLinear"]
    assert dq and all(scales[n.input[1]].size == 1 for n in dq if n.input[1] in scales)


def test_output_with_trailing_ones_gets_top1_over_its_classes(files, cli, capsys):
    code, _ = cli(capsys, "model=onnx", f"model.path={files['trailing_ones']}", "validation.min_top1_agreement=0.5")
    assert code == 0
    assert cli.report["metrics"]["top1_agreement"] >= 0.5


def test_dynamic_dims_beyond_the_batch_name_the_input_and_print_a_working_override(tmp_path, cli, capsys):
    path = corpus.token_ids(tmp_path / "models", dynamic_seq=True)
    cache = tmp_path / "cache"
    code, err = cli(capsys, "model=onnx", f"model.path={path}", cache=cache)
    line = _one_line(err)
    assert code == 2 and "input_ids" in line and "[0, 1]" in line, line
    assert _records(cache) == []
    override = re.search(r"'(profile\.inputs=\[.*\])'", line).group(1)  # pasted as the user would
    code, err = cli(capsys, "model=onnx", f"model.path={path}", override, cache=cache)
    assert code == 0, err
    assert cli.report["metrics"]["batch_size"] == 1


def test_profile_inputs_take_names_with_colons_and_slashes(files, cli, capsys):
    path = files["nhwc_dynamic_batch"]
    code, err = cli(capsys, "model=onnx", f"model.path={path}",
                    'profile.inputs=[{name: "input_1:0", min: [1, 12, 12, 3], opt: [4, 12, 12, 3], max: [8, 12, 12, 3]}]')
    assert code == 0, err
    assert cli.report["metrics"]["batch_size"] == 4
    code, err = cli(capsys, "model=onnx", f"model.path={files['two_inputs']}", "profile.batch.opt=2")
    assert code == 0, err
    assert cli.report["metrics"]["batch_size"] == 2


def test_model_onnxruntime_refuses_is_exit_2_in_one_line_with_nothing_cached(tmp_path, cli, capsys):
    path = corpus.type_error(tmp_path / "models")
    cache = tmp_path / "cache"
    code, err = cli(capsys, "model=onnx", f"model.path={path}", cache=cache)
    line = _one_line(err)
    assert code == 2 and "bad_types.onnx" in line and "Type Error" in line, line
    assert _records(cache) == []


def test_a_profile_naming_another_input_says_what_the_model_takes(files, tmp_path, cli, capsys):
    cache = tmp_path / "cache"
    code, err = cli(capsys, "model=onnx", f"model.path={files['classic_caffe2']}", "profile=b1", cache=cache)
    line = _one_line(err)
    assert code == 2 and "'data_0'" in line and "squeezenet_caffe2" in line and "profile=model" in line, line
    assert "resnet50" not in line
    assert _records(cache) == []


def test_missing_path_and_missing_target_say_what_to_write(cli, capsys):
    code, err = cli(capsys, "model=onnx")
    assert code == 2 and "model.path" in _one_line(err)
    code, err = cli(capsys)
    assert code == 2 and "model=onnx model.path=FILE" in _one_line(err)


@pytest.mark.slow
def test_model_over_2gb_of_external_data_is_read_in_place(tmp_path, cli, capsys):
    """2.2 GB of weights in a sparse external-data file (zeros, no disk): the source stage reads
    them in place (the cache gets no copy); fp32 only. The onnxruntime backend's engine is one ONNX
    file (protobuf: 2 GB at most), so its build stops at once with one line naming the way out."""
    path = corpus.big_external(tmp_path / "models")
    cache = tmp_path / "cache"
    code, err = cli(capsys, "model=onnx", f"model.path={path}", cache=cache)
    t = cli.report
    assert t["stages"][0] == {**t["stages"][0], "name": "source", "status": "built"}
    assert max((p.stat().st_size for p in (cache / "objects").rglob("*") if p.is_file()), default=0) < 1 << 20
    assert code == 2 and not t["ok"]
    line = _one_line(err)
    assert "2.2 GiB of weights" in line and "backend=tensorrt" in line
    assert [s["status"] for s in t["stages"]][:2] == ["built", "built"]  # source, precision (identity)


def test_profile_shapes_entry_for_a_new_input_says_to_write_plus_plus(files, tmp_path, cli, capsys):
    path = files["classic_caffe2"]
    entry = "{min: [1, 3, 32, 32], opt: [1, 3, 32, 32], max: [1, 3, 32, 32]}"
    code, err = cli(capsys, "model=onnx", f"model.path={path}", f"profile.shapes.data_0={entry}")
    assert code == 2 and "++profile.shapes.data_0=" in _one_line(err)
    code, err = cli(capsys, "model=onnx", f"model.path={path}", f"++profile.shapes.data_0={entry}")
    assert code == 0, err


def test_a_generator_recipe_pointed_at_a_user_file_is_named_after_the_file(files, cli, capsys):
    path = files["classic_caffe2"]
    code, err = cli(capsys, "target=resnet50_fp32", f"model.path={path}", "model.generator=null", "profile=model")
    assert code == 0, err
    assert cli.report["model"] == {"name": "squeezenet_caffe2", "path": str(path)}


def test_constant_validation_inputs_are_warned_about(files, tmp_path, cli, capsys):
    import numpy as np

    folder = tmp_path / "val"
    folder.mkdir()
    for i in range(16):
        np.save(folder / f"{i:02d}.npy", np.full(32, 0.5, np.float32))
    code, err = cli(capsys, "model=onnx", f"model.path={files['colon_names']}", "dataset.validation.kind=npy",
                    f"dataset.validation.path={folder}")
    assert code == 0, err
    warnings = cli.report["warnings"]
    assert any("'serving_default_x:0' hold one value" in w for w in warnings), warnings
    assert cli.report["synthetic_inputs"] is False


def test_dataset_int_range_sets_the_token_ids_of_every_split(files, tmp_path, cli, capsys):
    cache = tmp_path / "cache"
    code, err = cli(capsys, "model=onnx", f"model.path={files['token_ids']}", "dataset.int_range=[0,1]", cache=cache)
    assert code == 2 and "dataset.int_range: [0, 1] must be [low, high)" in _one_line(err)
    assert _records(cache) == []
    code, err = cli(capsys, "model=onnx", f"model.path={files['token_ids']}", "precision=int8",
                    "dataset.int_range=[3,40]")
    assert code == 0, err
    assert cli.report["calibration"]["synthetic"] is True
