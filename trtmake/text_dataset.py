"""English sentences as model inputs: a `kind: text` data source for token-id models (BERT).

Corpus: the prose of the standard library's `pydoc_data.topics` (the help() pages of the
language reference), available offline wherever Python is. Its paragraphs are split into
sentences, and only plain prose sentences are kept (6-40 words, a capital first letter, a final
period, mostly letters: no code, tables or grammar rules), deduplicated and sorted, so the corpus
is the same on every run of one Python version (the digest of `topics.py` keys the data).

Splits: each sentence belongs to exactly one split, by a hash of its text (half calibration, a
quarter validation, a quarter selection), so calibration, selection and validation never share
a sentence whatever their seeds. The split a source draws from is the one it feeds: the config
key it is read under (`dataset.calibration`, `dataset.validation`, `dataset.selection`). Within
its split, `seed` picks which sentences and in what order.

Tokenization: the model's own tokenizer (`tokenizer`, the dotted path of a callable returning
the folder that holds its `tokenizer.json`), through Hugging Face `tokenizers`; every sentence is
padded or truncated to the sequence length of the shapes asked for (axis 1), and each model
input takes the tokenizer output of its name: input_ids, attention_mask, token_type_ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydoc_data import topics

from trtmake.errors import MissingDependency, UserError
from trtmake.export.factory import call_factory, resolve_factory
from trtmake.heavy import lazy_import
from trtmake.profiles import InputSpec, Shape

np = lazy_import("numpy")

SPLITS = ("calibration", "validation", "selection")
# hash buckets of each split, out of 4: half of the corpus calibrates, a quarter each is held out
BUCKETS = {"calibration": (0, 1), "validation": (2,), "selection": (3,)}
FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
INSTALL_HINT = "pip install 'trtmake[transformers]'"
MIN_WORDS, MAX_WORDS = 6, 40
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_PARAGRAPH = re.compile(r"\n\s*\n")
_NOT_PROSE = (">>>", "::", "``", "*", "|", "==")


def split_of_key(key: str) -> str:
    """The split a source read under config key `key` draws from: its last component."""
    split = key.rsplit(".", 1)[-1]
    if split not in SPLITS:
        raise UserError(f"{key}: a 'text' data source feeds dataset.calibration, dataset.validation or "
                        "dataset.selection; use it under one of those keys")
    return split


def is_prose(sentence: str) -> bool:
    """A plain English sentence: 6-40 words, capitalized, ends with a period, mostly letters."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if not (sentence[0].isupper() and sentence.endswith(".")) or any(m in sentence for m in _NOT_PROSE):
        return False
    letters = sum(c.isalpha() or c == " " for c in sentence)
    return letters >= 0.85 * len(sentence)


def split_sentences(text: str) -> list[str]:
    """The prose sentences of a help page: unindented paragraphs (indented ones are code or
    grammar), whitespace collapsed, cut after . ! ? before a capital letter."""
    out = []
    for para in _PARAGRAPH.split(text):
        if not para.strip() or para.startswith((" ", "\t")):
            continue
        out.extend(s for s in _SENTENCE_END.split(" ".join(para.split())) if is_prose(s))
    return out


@lru_cache(maxsize=1)
def corpus() -> tuple[str, ...]:
    """Every prose sentence of pydoc_data.topics, deduplicated, sorted."""
    found: set[str] = set()
    for text in topics.topics.values():
        found.update(split_sentences(text))
    return tuple(sorted(found))


def split_of(sentence: str) -> str:
    """Which split a sentence belongs to, by a hash of its text (stable across runs and hosts)."""
    bucket = hashlib.blake2b(sentence.encode(), digest_size=8).digest()[0] % 4
    return next(name for name, buckets in BUCKETS.items() if bucket in buckets)


def sentences(split: str, count: int, seed: int, key: str = "dataset", count_key: str = "num_samples") -> list[str]:
    """`count` sentences of `split`, picked and ordered by `seed`."""
    pool = [s for s in corpus() if split_of(s) == split]
    if count > len(pool):
        raise UserError(f"{key}: the {split} split of the text corpus holds {len(pool)} sentences but "
                        f"{count} are asked for; lower {count_key}")
    order = np.random.default_rng(seed).permutation(len(pool))[:count]
    return [pool[i] for i in order]


def tokenizer_folder(src: dict[str, Any], key: str) -> Path:
    """The folder of the source's tokenizer (`tokenizer`: a dotted callable returning it)."""
    dotted = src.get("tokenizer")
    if not dotted:
        raise UserError(f"{key}.tokenizer: a 'text' data source needs the model's tokenizer: the dotted path of a "
                        "callable returning its folder, e.g. trtmake.export.zoo.minilm_l6_files")
    where = f"{key}.tokenizer"
    found = call_factory(resolve_factory(dotted, None, where), repr(dotted), where)
    folder = Path(str(found))
    if not (folder / "tokenizer.json").is_file():
        raise UserError(f"{where}: {dotted!r} gave {str(folder)!r}, which holds no tokenizer.json")
    return folder


def source_files(src: dict[str, Any], key: str) -> list[Path]:
    """What a text source's samples depend on (their digests key the data): the corpus module and
    the tokenizer's files."""
    folder = tokenizer_folder(src, key)
    names = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
    return [Path(topics.__file__), *(folder / n for n in names if (folder / n).is_file())]


def tokenize(texts: list[str], folder: Path, seq_len: int) -> dict[str, np.ndarray]:
    """{input_ids, attention_mask, token_type_ids}: int64 [len(texts), seq_len], padded with the
    tokenizer's pad token and truncated (the final [SEP] kept) to exactly seq_len."""
    try:
        from tokenizers import Tokenizer
    except ModuleNotFoundError:
        raise MissingDependency(f"a 'text' data source needs tokenizers: {INSTALL_HINT}") from None
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    pad = _pad_token(folder, tok)
    tok.enable_truncation(max_length=seq_len)
    tok.enable_padding(length=seq_len, pad_id=tok.token_to_id(pad), pad_token=pad)
    encoded = tok.encode_batch(texts)
    return {name: np.asarray([getattr(e, attr) for e in encoded], dtype=np.int64) for name, attr in FIELDS.items()}


def _pad_token(folder: Path, tok: Any) -> str:
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = folder / name
        if path.is_file():
            pad = json.loads(path.read_text()).get("pad_token")
            if isinstance(pad, dict):
                pad = pad.get("content")
            if isinstance(pad, str) and tok.token_to_id(pad) is not None:
                return pad
    return "[PAD]"


def text_samples(src: dict[str, Any], key: str, inputs: list[InputSpec], shapes: dict[str, Shape],
                 count: int, count_key: str = "num_samples") -> list[dict[str, np.ndarray]]:
    """`count` samples, each {input name: [seq] array of the input's dtype}, from the split that
    `key` names; seq is axis 1 of the input's shape."""
    unknown = [i.name for i in inputs if i.name not in FIELDS]
    if unknown:
        raise UserError(f"{key}: a 'text' data source feeds inputs named {', '.join(FIELDS)}; the model has "
                        f"{unknown[0]!r}: export it with those input names or give .npy samples")
    seqs = {tuple(shapes[i.name][1:]) for i in inputs}
    if len(seqs) != 1 or len(next(iter(seqs))) != 1:
        raise UserError(f"{key}: a 'text' data source needs every input shaped [batch, seq] with one seq; "
                        f"the profile gives {({i.name: list(shapes[i.name]) for i in inputs})}")
    seq_len = next(iter(seqs))[0]
    texts = sentences(split_of_key(key), count, int(src.get("seed", 0)), key, count_key)
    arrays = tokenize(texts, tokenizer_folder(src, key), seq_len)
    return [{i.name: arrays[i.name][row].astype(np.dtype(i.dtype)) for i in inputs} for row in range(count)]
