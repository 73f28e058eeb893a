"""Built-in model generators: valid ONNX, runnable in onnxruntime, deterministic, checked params."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from trtmake import models
from trtmake.errors import UserError

TINY = ["tiny_cnn", "tiny_mlp", "tiny_two_input"]


def _session(model, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL, out=None):
    """A CPU session on a path or serialized bytes; `out` receives the optimized graph."""
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    if out is not None:
        so.optimized_model_filepath = str(out)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])


def _feeds(sess: ort.InferenceSession, batch: int, seq: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(123)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [batch if d == "batch" else seq if d == "seq" else d for d in inp.shape]
        feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory) -> Path:
    """The one default ResNet-50 generation most resnet50 tests share."""
    path = tmp_path_factory.mktemp("resnet50") / "resnet50.onnx"
    models.generate("resnet50", {}, path)
    return path


@pytest.mark.parametrize("name", TINY)
def test_tiny_generator_passes_checker_and_runs_at_two_batch_sizes(tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    models.generate(name, {"seed": 1}, path)
    onnx.checker.check_model(str(path), full_check=True)
    assert path.stat().st_size < 100_000
    sess = _session(path)
    (output,) = sess.get_outputs()
    assert output.shape[0] == "batch"
    for batch in (1, 3):
        (y,) = sess.run(None, _feeds(sess, batch))
        assert y.shape == (batch, output.shape[1])
        assert np.isfinite(y).all()


@pytest.mark.parametrize("name", TINY)
def test_tiny_generator_is_byte_deterministic_and_seed_sensitive(tmp_path, name):
    paths = [tmp_path / f"{i}.onnx" for i in range(3)]
    for path, seed in zip(paths, (7, 7, 8)):
        models.generate(name, {"seed": seed}, path)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", TINY)
def test_fixed_batch_param_fixes_the_batch_dimension(tmp_path, name):
    path = tmp_path / "fixed.onnx"
    models.generate(name, {"batch": 2}, path)
    sess = _session(path)
    assert all(i.shape[0] == 2 for i in sess.get_inputs())
    (y,) = sess.run(None, _feeds(sess, 2))
    assert y.shape[0] == 2


def test_tiny_two_input_keeps_seq_dynamic_and_can_fix_it(tmp_path):
    models.generate("tiny_two_input", {}, tmp_path / "d.onnx")
    models.generate("tiny_two_input", {"seq": 6}, tmp_path / "f.onnx")
    dynamic, fixed = _session(tmp_path / "d.onnx"), _session(tmp_path / "f.onnx")
    assert [i.shape for i in dynamic.get_inputs()] == [["batch", "seq", 8], ["batch", "seq"]]
    assert [i.shape for i in fixed.get_inputs()] == [["batch", 6, 8], ["batch", 6]]
    for seq in (3, 11):
        (y,) = dynamic.run(None, _feeds(dynamic, 2, seq))
        assert y.shape == (2, 8)


def test_default_params_and_explicit_defaults_give_the_same_bytes(tmp_path):
    models.generate("tiny_cnn", {}, tmp_path / "a.onnx")
    models.generate("tiny_cnn", {"seed": 0, "batch": "dynamic"}, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_generated_model_records_generator_and_resolved_params(tmp_path):
    models.generate("tiny_mlp", {"seed": 3}, tmp_path / "m.onnx")
    props = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert props["trtmake.generator"] == "tiny_mlp"
    assert props["trtmake.generator_params"] == '{"batch": "dynamic", "seed": 3}'
    assert props["trtmake.generator_version"] == str(models.GENERATOR_VERSION["tiny_mlp"])


def test_every_generator_has_a_version_and_checked_defaults():
    assert set(models.GENERATOR_VERSION) == set(models.GENERATORS)
    for name in models.GENERATORS:
        assert models.resolve_params(name, None)["seed"] == 0


def test_resnet50_has_torchvision_layout_with_unfused_batchnorm(resnet50_file):
    proto = onnx.load(resnet50_file)
    onnx.checker.check_model(str(resnet50_file))
    ops = Counter(n.op_type for n in proto.graph.node)
    assert len(proto.graph.node) == 175
    assert ops == {
        "Conv": 53, "BatchNormalization": 53, "Relu": 49, "Add": 16,
        "MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1,
    }
    n_params = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    assert 25_500_000 < n_params < 25_700_000  # torchvision's 25.56M plus BN running stats
    assert proto.opset_import[0].version == 17


def test_resnet50_runs_at_two_batch_sizes_with_input_dependent_logits(resnet50_file):
    sess = _session(resnet50_file)
    assert sess.get_inputs()[0].shape == ["batch", 3, 224, 224]
    assert sess.get_outputs()[0].shape == ["batch", 1000]
    for batch in (1, 2):
        (logits,) = sess.run(None, _feeds(sess, batch))
        assert logits.shape == (batch, 1000)
        assert np.isfinite(logits).all() and np.abs(logits).max() < 1e3
    assert not np.allclose(logits[0], logits[1])


def test_resnet50_batchnorm_fuses_under_ort_enable_all(resnet50_file, tmp_path):
    opt = tmp_path / "opt.onnx"
    fused = _session(resnet50_file, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, opt)
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(opt).graph.node}
    assert len(onnx.load(opt).graph.node) < 175 - 53 + 1
    plain = _session(resnet50_file)
    feeds = _feeds(plain, 1)
    np.testing.assert_allclose(fused.run(None, feeds)[0], plain.run(None, feeds)[0], atol=1e-3)


def test_resnet50_is_byte_deterministic(resnet50_file):
    assert models.build("resnet50", {}).SerializeToString() == resnet50_file.read_bytes()


@pytest.mark.slow
def test_resnet50_fold_bn_matches_unfolded_outputs(resnet50_file):
    folded = models.build("resnet50", {"fold_bn": True, "batch": 2})
    assert len(folded.graph.node) == 175 - 53
    sess = _session(folded.SerializeToString())
    assert sess.get_inputs()[0].shape == [2, 3, 224, 224]
    plain = _session(resnet50_file)
    feeds = _feeds(plain, 2)
    np.testing.assert_allclose(sess.run(None, feeds)[0], plain.run(None, feeds)[0], atol=1e-3)


def test_generate_leaves_no_temp_file(tmp_path):
    models.generate("tiny_mlp", {}, tmp_path / "sub" / "m.onnx")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.onnx"]


def test_failed_publish_removes_temp_and_keeps_old_file(tmp_path, monkeypatch):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        models.generate("tiny_mlp", {}, out)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    assert out.read_bytes() == b"old"


def test_unknown_generator_is_a_user_error_listing_choices(tmp_path):
    with pytest.raises(UserError, match=r"model.generator: unknown generator 'resnet51'") as exc:
        models.generate("resnet51", {}, tmp_path / "m.onnx")
    assert "resnet50" in str(exc.value) and "tiny_cnn" in str(exc.value)
    assert not list(tmp_path.iterdir())


def test_unknown_param_is_a_user_error_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"model\.generator_params\.depth: unknown parameter"):
        models.generate("resnet50", {"depth": 101}, tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"model\.generator_params\.num_classes"):
        models.generate("tiny_mlp", {"num_classes": 3}, tmp_path / "m.onnx")


@pytest.mark.parametrize(
    "params, key",
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"batch": "big"}, "batch"),
        ({"batch": 0}, "batch"),
        ({"batch": True}, "batch"),
        ({"num_classes": 0}, "num_classes"),
        ({"fold_bn": "yes"}, "fold_bn"),
    ],
)
def test_invalid_param_value_is_a_user_error_naming_the_key(tmp_path, params, key):
    with pytest.raises(UserError, match=rf"model\.generator_params\.{key}: expected"):
        models.generate("resnet50", params, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_resolve_params_fills_defaults():
    assert models.resolve_params("resnet50", {"batch": 4}) == {
        "batch": 4, "fold_bn": False, "num_classes": 1000, "seed": 0,
    }
