"""Explain names exactly what changed since the target's last run."""


def _explain(trtmake, *args):
    code = trtmake("target=tiny_cnn_fp32", *args, command="explain")
    return code, trtmake.last_out


def test_explain_after_a_build_says_up_to_date(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    code, out = _explain(trtmake)
    assert code == 0
    assert out.count("up to date") == 5 and "stale" not in out


def test_explain_names_changed_config_field_with_old_and_new_value(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    code, out = _explain(trtmake, "backend.onnxruntime.graph_optimization_level=basic")
    assert "config.graph_optimization_level: all -> basic" in out
    build_block = out.split("build")[1].split("reference")[0]
    assert "stale" in build_block
    assert "precision  up to date" in out


def test_explain_names_changed_file_digest(trtmake, tiny_model):
    args = ("target=tiny_cnn_fp32", f"model.path={tiny_model}", "model.generator=null")
    assert trtmake(*args) == 0
    tiny_model.with_name("tiny.weights").write_bytes(b"\0" * tiny_model.with_name("tiny.weights").stat().st_size)
    code, out = _explain(trtmake, *args[1:])
    assert "inputs.external/tiny.weights:" in out
    assert "its input 'source' will be rebuilt first" in " ".join(out.split())


def test_explain_writes_nothing_to_the_cache(trtmake):
    code, out = _explain(trtmake)
    assert "never built" in out
    assert not any(p.parent.name == "objects" or "actions" in p.parts for p in trtmake.cache_files())


def test_explain_names_validation_change_only_for_validate(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    code, out = _explain(trtmake, "validation.iters=7")
    assert "config.iters: 30 -> 7" in out
    assert out.count("up to date") == 4


def test_explain_without_tensorrt_explains_the_other_stages_and_says_so_once(trtmake):
    import importlib.util

    import pytest

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    assert trtmake("target=tiny_cnn_fp32") == 0
    code = trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16", "backend=tensorrt", command="explain")
    out = " ".join(trtmake.last_out.split())  # rich wraps long lines
    assert code == 2
    assert out.count("tensorrt is not installed") == 1, out
    assert "the same as for tiny_cnn_fp" in out
    assert "skipped" not in out
    assert out.count("source up to date") == 2  # tiny_cnn's source graph is shared and built
    assert "precision stale" in out and "never built" in out  # fp16's precision graph is not
    assert out.count("needs tensorrt, which is not available here") == 4  # build and validate, twice
