"""Source normalization of a user's file (trtmake/normalize.py) and the onnxruntime check a
stage makes before it publishes a graph (trtmake/ort_check.py)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import own_model_corpus as corpus
from trtmake import normalize as norm
from trtmake.ort_check import onnxruntime_refuses


def test_ir3_weights_inputs_removed_and_ir_raised_to_what_the_opset_needs(tmp_path):
    src = corpus.classic_caffe2(tmp_path)
    out = tmp_path / "out.onnx"
    done = norm.normalize(onnx.load(str(src)), out, opset=None, external=False)
    written = onnx.load(str(out))
    assert [i.name for i in written.graph.input] == ["data_0"]
    assert written.ir_version == 4 and done["opset"] == 9  # opset 9 needs IR 4; the opset is kept
    assert done["steps"][0].startswith("removed 5 graph inputs") and "shape inference" in done["steps"]
    assert written.graph.value_info  # shape inference filled the intermediate tensors
    assert onnxruntime_refuses(out) is None


def test_opset_upgrade_for_per_channel_int8(tmp_path):
    src = corpus.opset7_slash(tmp_path)
    done = norm.normalize(onnx.load(str(src)), tmp_path / "out.onnx", opset=13, external=False)
    assert done["opset"] == 13 and any("opset 7 -> 13" in s for s in done["steps"]), done
    assert onnx.load(str(tmp_path / "out.onnx")).ir_version == 7


def test_failed_upgrade_falls_back_to_per_tensor_and_says_so(tmp_path, monkeypatch):
    from onnx import version_converter

    def refuse(model, opset):
        raise RuntimeError("No Adapter For Upsample\n  at line 3")

    monkeypatch.setattr(version_converter, "convert_version", refuse)
    done = norm.normalize(onnx.load(str(corpus.opset7_slash(tmp_path))), tmp_path / "o.onnx", opset=13, external=False)
    assert done["opset"] == 7
    assert done["skipped"] == [f"opset 7 -> 13 failed (No Adapter For Upsample at line 3): {norm.PER_TENSOR}"]


def test_external_data_is_never_inlined(tmp_path):
    src = corpus.external_opset11(tmp_path)
    out = tmp_path / "out.onnx"
    done = norm.normalize(onnx.load(str(src), load_external_data=False), out, opset=13, external=True)
    assert not done["rewritten"] and not out.exists()
    assert norm.PER_TENSOR in done["skipped"][0]


def test_ir_stamp_lowered_only_where_onnxruntime_refuses_it(tmp_path, monkeypatch):
    """An onnx package newer than onnxruntime stamps an IR version it refuses (onnxruntime 1.30
    refused IR 11); the written graph then carries the IR its opset needs."""
    from trtmake import ort_check

    model = onnx.load(str(corpus.mlp_opset17_new_ir(tmp_path)))
    model.ir_version = 11
    assert norm.ir_version_to_write(model) == 11  # this onnxruntime takes it: left alone
    monkeypatch.setattr(ort_check, "onnxruntime_rejects", lambda ir, opset: "too new" if ir > 10 else None)
    assert norm.ir_version_to_write(model) == 8


@pytest.mark.parametrize("raw, expected", [
    ("[ONNXRuntimeError] : 1 : FAIL : Load model from /a/b/c.onnx failed:Type Error: Type (tensor(int64)) bad",
     "Type Error: Type (tensor(int64)) bad"),
    ("[ShapeInferenceError] Incompatible dimensions\nsecond line", "Incompatible dimensions second line"),
])
def test_first_line_drops_status_prefixes(raw, expected):
    assert norm.first_line(RuntimeError(raw)) == expected


def test_first_line_cuts_long_text_at_a_word():
    from trtmake.errors import first_line

    text = first_line(RuntimeError("word " * 200), 200)
    assert len(text) <= 200 and text.endswith(" ...")
    assert first_line(RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Load model from /m.onnx failed: bad")) == "bad"


def test_precision_stage_publishes_nothing_onnxruntime_refuses(tmp_path):
    from trtmake.errors import BuildFailed
    from trtmake.stages.precision import _check_loads

    bad = corpus.type_error(tmp_path)
    with pytest.raises(BuildFailed, match=r"precision=fp16: the converted graph is invalid.*Type Error") as exc:
        _check_loads(bad, "fp16")
    assert len(str(exc.value)) < 300
    _check_loads(corpus.colon_names(tmp_path), "fp16")  # a valid graph passes


def test_source_check_runs_the_graph_once(tmp_path):
    import numpy as np

    path = corpus.colon_names(tmp_path)
    assert onnxruntime_refuses(path, {"serving_default_x:0": np.zeros((1, 32), np.float32)}) is None
    why = onnxruntime_refuses(path, {"serving_default_x:0": np.zeros((1, 31), np.float32)})
    assert why.startswith("onnxruntime cannot run it on serving_default_x:0 [1, 31]")


def test_generated_models_keep_an_ir_version_older_onnxruntime_loads():
    from trtmake.models import build

    model = build("tiny_cnn", {"seed": 0})
    assert model.ir_version == norm.min_ir_version(model) == 8


def test_corpus_file_paths_are_distinct(tmp_path):
    paths = [build(tmp_path) for build in corpus.CORPUS.values()]
    assert len(set(paths)) == len(paths) >= 11 and all(Path(p).is_file() for p in paths)
