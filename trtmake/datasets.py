"""Calibration and validation inputs: seeded synthetic arrays, a folder of .npy/.npz files,
a folder of images with declared preprocessing, or tokenized English sentences (`text`).

A data source is digested (file contents + its config) so stages that read it are keyed on
exactly what they saw; batches are built for the shapes of one profile point.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from trtmake.errors import UserError
from trtmake.hashing import StatCache, digest_json
from trtmake.heavy import lazy_import
from trtmake.profiles import InputSpec, Shape, summarize

np = lazy_import("numpy")
image_dataset = lazy_import("trtmake.image_dataset")
text_dataset = lazy_import("trtmake.text_dataset")

NPY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def source_files(src: dict[str, Any], key: str, root: Path) -> list[Path]:
    """The files of a folder data source, sorted; errors name the config key."""
    if src["kind"] == "synthetic" or (src["kind"] == "skimage" and not src.get("path")):
        return []
    if src["kind"] == "skimage":  # a crop list (JSON) of scikit-image's photos
        return [image_dataset.crop_list_path(root, src["path"], f"{key}.path")]
    if src["kind"] == "text":  # sentences of pydoc_data.topics, tokenized by the model's tokenizer
        return text_dataset.source_files(src, key)
    if not src.get("path"):
        raise UserError(f"{key}.path: a '{src['kind']}' data source needs a folder path")
    folder = (root / src["path"]).resolve()
    if not folder.is_dir():
        raise UserError(f"{key}.path: folder {folder} does not exist; point it at your data")
    suffixes = NPY_SUFFIXES if src["kind"] == "npy" else IMAGE_SUFFIXES
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)
    if not files:
        raise UserError(f"{key}.path: {folder} holds no {'/'.join(suffixes)} files; add samples or fix the path")
    return files


def source_digest(src: dict[str, Any], key: str, root: Path, stat: StatCache) -> str:
    """Digest of everything a data source feeds: its config and the bytes of its files."""
    files = source_files(src, key, root)
    config = {k: v for k, v in src.items() if k != "path"}
    if src["kind"] == "skimage":
        try:
            config["scikit-image"] = metadata.version("scikit-image")
        except metadata.PackageNotFoundError:
            raise UserError(f"{key}.kind=skimage needs scikit-image: pip install scikit-image") from None
    if src["kind"] == "text":  # the split is the key's: the same source under another key reads other sentences
        config["split"] = text_dataset.split_of_key(key)
        try:
            config["tokenizers"] = metadata.version("tokenizers")
        except metadata.PackageNotFoundError:
            raise UserError(f"{key}.kind=text needs tokenizers: pip install 'trtmake[transformers]'") from None
    return digest_json({"config": config, "files": [[f.name, stat.digest(f)] for f in files]})


def is_synthetic(src: dict[str, Any]) -> bool:
    return src["kind"] == "synthetic"


# Where each data split's sample count is set (the dataset itself declares no count).
COUNT_KEYS = {"dataset.validation": "validation.num_samples", "dataset.calibration": "calibrator.num_samples",
              "dataset.selection": "validation.num_samples"}


def load_samples(src: dict[str, Any], key: str, root: Path, inputs: list[InputSpec],
                 shapes: dict[str, Shape], count: int) -> list[dict[str, np.ndarray]]:
    """`count` samples, each {input name: array of shape[1:]} (one row of a batch)."""
    count_key = COUNT_KEYS.get(key, "num_samples")
    if count <= 0:
        raise UserError(f"{count_key}: must be > 0, got {count}")
    kind = src["kind"]
    if kind == "synthetic":
        for spec in inputs:  # a bad int_range is a user error before any sample is made
            if spec.dtype.startswith(("int", "uint")):
                int_range(src, spec, key)
        return _synthetic(src, inputs, shapes, count)
    if kind == "skimage":
        samples = _skimage(src, inputs, count, key, root)
        where = [f"{key} (skimage photos)"] * len(samples)
    elif kind == "text":
        samples = text_dataset.text_samples(src, key, inputs, shapes, count, count_key)
        where = [f"{key} (text)"] * len(samples)
    else:
        files = source_files(src, key, root)
        if len(files) < count:
            raise UserError(f"{key}: {len(files)} samples in {src['path']} but {count} are asked for; "
                            f"add samples or lower {count_key}")
        files = files[:count]
        samples = [_read_npy(f, inputs, key) for f in files] if kind == "npy" else _read_images(files, src, inputs, key)
        where = [f"{key}: {f.name}" for f in files]
    for place, sample in zip(where, samples):
        _check_sample(sample, inputs, shapes, place)
    return samples


def batches(samples: list[dict[str, np.ndarray]], batch_size: int) -> list[dict[str, np.ndarray]]:
    """Stack rows into full batches; a last partial batch is dropped unless it is the only one."""
    out = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        if len(chunk) < batch_size and out:
            break
        if len(chunk) < batch_size:  # fewer samples than one batch: repeat rows to fill it
            chunk = [chunk[i % len(chunk)] for i in range(batch_size)]
        out.append({name: np.stack([s[name] for s in chunk]) for name in chunk[0]})
    return out


def _synthetic(src: dict[str, Any], inputs: list[InputSpec], shapes: dict[str, Shape], count: int):
    rng = np.random.default_rng(src["seed"])
    samples = []
    for _ in range(count):
        sample = {}
        for spec in inputs:
            row = shapes[spec.name][1:]
            dtype = np.dtype(spec.dtype)
            if dtype.kind in "iu":
                lo, hi = int_range(src, spec)
                sample[spec.name] = rng.integers(lo, hi, size=row).astype(dtype)
            elif dtype.kind == "b":
                sample[spec.name] = rng.random(size=row) < 0.5
            elif src["distribution"] == "uniform":
                sample[spec.name] = rng.uniform(src["low"], src["high"], size=row).astype(dtype)
            else:
                sample[spec.name] = rng.standard_normal(size=row).astype(dtype)
        samples.append(sample)
    return samples


DEFAULT_INT_RANGE = (0, 100)


def int_range(src: dict[str, Any], spec: InputSpec, key: str = "dataset") -> tuple[int, int]:
    """[low, high) of a synthetic integer input: `int_range` when set, else the vocabulary size
    the model declares (an embedding table it indexes), else DEFAULT_INT_RANGE. Never a constant."""
    declared = src.get("int_range")
    if declared is not None:
        if len(declared) != 2 or int(declared[1]) - int(declared[0]) < 2:
            raise UserError(f"{key}.int_range: {list(declared)} must be [low, high) with at least two values, "
                            "e.g. [0, 30522] for token ids")
        return int(declared[0]), int(declared[1])
    if spec.vocab and spec.vocab >= 2:
        return 0, int(spec.vocab)
    return DEFAULT_INT_RANGE


def synthetic_batch(inputs: list[InputSpec], shapes: dict[str, Shape], seed: int = 0) -> dict[str, np.ndarray]:
    """One seeded batch at `shapes` (batch dim included): what the source stage runs once."""
    src = {"seed": seed, "distribution": "normal", "low": 0.0, "high": 1.0, "int_range": None}
    batch = max(int(shapes[inputs[0].name][0]), 1) if inputs else 1
    rows = _synthetic(src, inputs, shapes, batch)
    return {spec.name: np.stack([r[spec.name] for r in rows]) for spec in inputs}


def constant_inputs(samples: list[dict[str, np.ndarray]]) -> list[str]:
    """Inputs whose every value, over every sample, is the same (validation says nothing there)."""
    if not samples:
        return []
    out = []
    for name in samples[0]:
        first = samples[0][name].reshape(-1)[:1]
        if all(np.all(s[name] == first) for s in samples) and samples[0][name].size:
            out.append(name)
    return out


def _skimage(src: dict[str, Any], inputs: list[InputSpec], count: int, key: str, root: Path):
    """Crops of scikit-image's real photographs, then the declared preprocessing: the crops a
    crop list (`path`, JSON) names, in order, or else seeded random crops."""
    if len(inputs) != 1:
        raise UserError(f"{key}: photos feed one input, the model has {[i.name for i in inputs]}")
    size = int(src["preprocess"].get("resize") or 256)
    if src.get("path"):
        boxes = image_dataset.read_crop_list(image_dataset.crop_list_path(root, src["path"], f"{key}.path"), f"{key}.path")
        if len(boxes) < count:
            raise UserError(f"{key}: {len(boxes)} crops in {src['path']} but {count} are asked for; "
                            f"extend the crop list or lower {COUNT_KEYS.get(key, 'num_samples')}")
        boxes = boxes[:count]
    else:
        boxes = image_dataset.crop_boxes(count, src["seed"])
    return [{inputs[0].name: image_dataset.preprocess(img, src["preprocess"], key=f"{key}.preprocess")}
            for img in image_dataset.render_crops(boxes, size=size)]


def _read_npy(path: Path, inputs: list[InputSpec], key: str) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{key}: cannot read {path} ({exc}); save samples with numpy.save/savez") from None
    if isinstance(loaded, np.ndarray):
        if len(inputs) != 1:
            raise UserError(
                f"{key}: {path.name} is a single array but the model has inputs "
                f"[{summarize([i.name for i in inputs])}]; save one .npz per sample keyed by input name"
            )
        return {inputs[0].name: loaded}
    with loaded:
        return {name: loaded[name] for name in loaded.files}


def _read_images(files: list[Path], src: dict[str, Any], inputs: list[InputSpec], key: str):
    if len(inputs) != 1:
        raise UserError(f"{key}: an image folder feeds one input, the model has {[i.name for i in inputs]}")
    return [{inputs[0].name: arr} for arr in image_dataset.load_images(files, src["preprocess"])]


def _check_sample(sample: dict[str, np.ndarray], inputs: list[InputSpec], shapes: dict[str, Shape], where: str):
    names = {i.name for i in inputs}
    if set(sample) != names:
        raise UserError(f"{where}: arrays [{summarize(sorted(sample))}] do not match the model's inputs "
                        f"[{summarize(sorted(names))}]; save one array per model input, keyed by its name")
    for spec in inputs:
        arr = sample[spec.name]
        want = tuple(shapes[spec.name][1:])
        if arr.shape == (1, *want):
            arr = sample[spec.name] = arr[0]
        if arr.shape != want:
            raise UserError(
                f"{where}: input '{spec.name}' has shape {list(arr.shape)}, expected {list(want)} "
                "(one sample without the batch dim)"
            )
        if arr.dtype != np.dtype(spec.dtype):
            raise UserError(f"{where}: input '{spec.name}' is {arr.dtype}, the model takes {spec.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise UserError(f"{where}: input '{spec.name}' holds NaN or Inf; clean the sample")
