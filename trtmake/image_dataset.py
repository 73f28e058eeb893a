"""A folder of images as model inputs, with declared preprocessing.

A spec is a plain dict (the dataset config slice), every key optional:
  color: "RGB" (default) or "BGR"      grayscale is stacked to 3 channels, alpha dropped
  resize: int (shorter side) or [h, w]  bilinear with anti-aliasing
  center_crop: int or [h, w]
  scale: float (e.g. 0.00392156862745098 = 1/255), applied before mean/std
  mean, std: one value or one per channel: x = (x * scale - mean) / std
  layout: "NCHW" (default) or "NHWC"   per-sample arrays carry no batch axis (CHW / HWC)
  dtype: "float32" (default), "float16", "uint8", ...
Order: color, resize, center crop, scale, mean/std, layout, dtype.

Images are read with Pillow, or scikit-image when Pillow is absent; resized with scikit-image,
or Pillow when scikit-image is absent (both optional).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trtmake.atomic import write_text_atomic
from trtmake.errors import MissingDependency, UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SPEC_KEYS = ("color", "resize", "center_crop", "scale", "mean", "std", "layout", "dtype")
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "stereo_motorcycle",
    "immunohistochemistry", "camera", "brick", "grass", "gravel", "moon", "coins", "clock",
)


def list_image_files(folder: Path, key: str = "dataset.path") -> list[Path]:
    """The image files of `folder`, sorted by name; UserError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{key}: {folder} is not a folder; point it at a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{key}: {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); add images or fix the path")
    return files


def load_image_folder(folder: Path, spec: dict, key: str = "dataset") -> list[np.ndarray]:
    """Read and preprocess every image of `folder`, in filename order."""
    return load_images(list_image_files(folder, f"{key}.path"), spec, key)


def load_images(files: Sequence[Path], spec: dict, key: str = "dataset.preprocess") -> list[np.ndarray]:
    """Read and preprocess `files`, in the order given."""
    check_spec(spec, key)
    return [preprocess(read_image(path), spec, key) for path in files]


def read_image(path: Path) -> np.ndarray:
    """One image as an array (HW, HWC); UserError naming the file when it cannot be decoded.

    Pillow when installed (direct, clear errors), else scikit-image's imread."""
    path = Path(path)
    reader = _image_reader()
    try:
        image = np.asarray(reader(path))
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, ...
        detail = " ".join(str(exc).split())[:160]
        raise UserError(f"{path}: not a readable image ({type(exc).__name__}: {detail}); replace or remove it") from None
    if image.ndim not in (2, 3) or image.size == 0:
        raise UserError(f"{path}: decoded to shape {list(image.shape)}, not an image; replace or remove it")
    return image


def _image_reader():
    try:
        from PIL import Image
    except ImportError:
        try:
            from skimage import io as skio
        except ImportError:
            raise MissingDependency("reading images needs Pillow or scikit-image: pip install pillow") from None
        return lambda p: skio.imread(str(p))

    def read(p: Path) -> np.ndarray:
        with Image.open(p) as img:
            if img.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F", "1"):
                img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
            return np.asarray(img)
    return read


def check_spec(spec: dict, key: str = "dataset") -> None:
    unknown = sorted(str(k) for k in spec if k not in SPEC_KEYS)
    if unknown:
        raise UserError(f"{key}: unknown preprocessing keys {unknown}; allowed: {list(SPEC_KEYS)}")
    if (spec.get("layout") or "NCHW") not in ("NCHW", "NHWC"):
        raise UserError(f"{key}.layout: '{spec['layout']}' is not NCHW or NHWC")
    if (spec.get("color") or "RGB") not in ("RGB", "BGR"):
        raise UserError(f"{key}.color: '{spec['color']}' is not RGB or BGR")
    try:
        np.dtype(spec.get("dtype") or "float32")
    except TypeError:
        raise UserError(f"{key}.dtype: '{spec['dtype']}' is not a numpy dtype name") from None
    for name in ("resize", "center_crop"):
        if spec.get(name) is not None:
            _size(spec[name], f"{key}.{name}")


def preprocess(image: np.ndarray, spec: dict, key: str = "dataset") -> np.ndarray:
    """Turn one decoded image (HW or HWC, any channel count 1/3/4) into a model input sample."""
    check_spec(spec, key)
    x = to_rgb(image)
    if spec.get("color") == "BGR":
        x = x[..., ::-1]
    x = x.astype(np.float32) if x.dtype != np.float32 else x
    if spec.get("resize") is not None:
        x = _resize(x, _resize_shape(x.shape[:2], spec["resize"], f"{key}.resize"))
    if spec.get("center_crop") is not None:
        x = _center_crop(x, _size(spec["center_crop"], f"{key}.center_crop"), f"{key}.center_crop")
    x = x * np.float32(1.0 if spec.get("scale") is None else spec["scale"])
    mean, std = _channels(spec.get("mean"), 0.0), _channels(spec.get("std"), 1.0)
    if mean.size not in (1, 3) or std.size not in (1, 3):
        raise UserError(f"{key}.mean/std: give one value or one per channel (3), got {mean.size} and {std.size}")
    if np.any(std == 0):
        raise UserError(f"{key}.std: must not contain 0")
    x = (x - mean.reshape(-1)) / std.reshape(-1)
    if (spec.get("layout") or "NCHW") == "NCHW":
        x = x.transpose(2, 0, 1)
    dtype = np.dtype(spec.get("dtype") or "float32")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        x = np.clip(np.rint(x), info.min, info.max)
    return np.ascontiguousarray(x.astype(dtype))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """HW / HW1 grayscale -> HW3, HW4 (RGBA) -> HW3; booleans become 0/255 uint8."""
    x = np.asarray(image)
    if x.dtype == bool:
        x = x.astype(np.uint8) * 255
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[2] not in (1, 2, 3, 4):
        raise UserError(f"image of shape {list(image.shape)} is not HW or HWC with 1-4 channels")
    if x.shape[2] in (1, 2):  # gray, gray + alpha
        x = np.repeat(x[..., :1], 3, axis=2)
    return x[..., :3]


def _channels(value, default: float) -> np.ndarray:
    """A scalar or per-channel list (None or [] mean `default`)."""
    if value is None:
        return np.asarray([default], np.float32)
    values = [value] if np.isscalar(value) else list(value)
    return np.asarray(values or [default], np.float32)


def _size(value, key: str) -> tuple[int, int]:
    try:
        dims = [int(value)] * 2 if np.isscalar(value) else [int(v) for v in value]
    except (TypeError, ValueError):
        dims = []
    if len(dims) != 2 or min(dims) <= 0:
        raise UserError(f"{key}: give a positive int or [height, width], got {value!r}")
    return dims[0], dims[1]


def _resize_shape(shape: Sequence[int], value, key: str) -> tuple[int, int]:
    if np.isscalar(value):  # shorter side to `value`, aspect ratio kept
        side = _size(value, key)[0]
        h, w = shape
        return (side, max(1, round(w * side / h))) if h <= w else (max(1, round(h * side / w)), side)
    return _size(value, key)


def _center_crop(x: np.ndarray, size: tuple[int, int], key: str) -> np.ndarray:
    h, w = x.shape[:2]
    ch, cw = size
    if ch > h or cw > w:
        raise UserError(f"{key}: crop {ch}x{cw} is larger than the image {h}x{w}; resize first or crop less")
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[top:top + ch, left:left + cw]


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if tuple(x.shape[:2]) == tuple(size):
        return x
    try:
        from skimage.transform import resize
    except ImportError:
        try:
            from PIL import Image
        except ImportError:
            raise MissingDependency("resizing images needs scikit-image or Pillow: pip install scikit-image") from None
        channels = [np.asarray(Image.fromarray(x[..., c]).resize(size[::-1], Image.BILINEAR)) for c in range(x.shape[2])]
        return np.stack(channels, axis=2).astype(np.float32)
    return resize(x, size, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


CROP_SCALE = (0.3, 1.0)  # side of a random crop, as a fraction of the photo's shorter side
Crop = tuple[str, int, int, int]  # (scikit-image photo name, top, left, side)


def skimage_photo(name: str) -> np.ndarray:
    """One of scikit-image's sample photographs as HWC RGB uint8."""
    import skimage.data

    if name not in SKIMAGE_PHOTOS:
        raise UserError(f"'{name}' is not one of the scikit-image photos {list(SKIMAGE_PHOTOS)}")
    photo = getattr(skimage.data, name)()
    return to_rgb(photo[0] if isinstance(photo, tuple) else photo)


def crop_boxes(n: int, seed: int, names: Sequence[str] = SKIMAGE_PHOTOS,
               scale: tuple[float, float] = CROP_SCALE) -> list[Crop]:
    """`n` seeded random square crops (random photo and position, side `scale` of the shorter side)."""
    lo, hi = scale
    if not 0.0 < lo <= hi <= 1.0:
        raise UserError(f"crop scale must satisfy 0 < low <= high <= 1, got {scale}")
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple[int, int]] = {}
    boxes = []
    for _ in range(n):
        name = names[int(rng.integers(len(names)))]
        if name not in shapes:
            shapes[name] = skimage_photo(name).shape[:2]
        h, w = shapes[name]
        side = int(min(h, w) * rng.uniform(lo, hi))
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        boxes.append((name, top, left, side))
    return boxes


def render_crops(boxes: Sequence[Crop], size: int = 224) -> list[np.ndarray]:
    """Each crop of its photo, resized to size x size (bilinear, anti-aliased): HWC uint8 RGB."""
    from skimage.transform import resize

    photos: dict[str, np.ndarray] = {}
    crops = []
    for name, top, left, side in boxes:
        if name not in photos:
            photos[name] = skimage_photo(name)
        photo = photos[name]
        h, w = photo.shape[:2]
        if side <= 0 or top < 0 or left < 0 or top + side > h or left + side > w:
            raise UserError(f"crop {[name, top, left, side]} does not fit the {h}x{w} photo '{name}'")
        crop = resize(photo[top:top + side, left:left + side], (size, size), order=1, anti_aliasing=True,
                      preserve_range=True)
        crops.append(np.clip(np.rint(crop), 0, 255).astype(np.uint8))
    return crops


def skimage_crops(n: int, seed: int, size: int = 224, names: Sequence[str] = SKIMAGE_PHOTOS,
                  scale: tuple[float, float] = CROP_SCALE) -> list[np.ndarray]:
    """Random square crops (random position, side 30-100% of the shorter side by default) of
    scikit-image's photographs, resized to size x size: HWC uint8 RGB."""
    return render_crops(crop_boxes(n, seed, names, scale), size)


CROP_LIST_FORMAT = "trtmake-photo-crops"


def crop_list_path(root: Path, path: str, key: str) -> Path:
    file = (Path(root) / path).resolve()
    if not file.is_file():
        raise UserError(f"{key}: crop list {file} does not exist; point it at a JSON crop list")
    return file


def read_crop_list(path: Path, key: str = "dataset.path") -> list[Crop]:
    """The crops of a crop list written by `write_crop_list` ([photo, top, left, side] each)."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != CROP_LIST_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {CROP_LIST_FORMAT!r}")
        boxes = [(str(n), int(t), int(le), int(s)) for n, t, le, s in data["crops"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{key}: {path} is not a crop list ({exc})") from None
    for box in boxes:
        if box[0] not in SKIMAGE_PHOTOS:
            raise UserError(f"{key}: {path}: '{box[0]}' is not one of the scikit-image photos {list(SKIMAGE_PHOTOS)}")
    return boxes


def write_crop_list(path: Path, boxes: Sequence[Crop], **about) -> None:
    """Write `boxes` (and what made them, `about`) as a JSON crop list, one crop a line."""
    head = json.dumps({"format": CROP_LIST_FORMAT, "version": 1, **about}, indent=1, sort_keys=True)
    lines = ",\n".join("  " + json.dumps(list(b)) for b in boxes)
    write_text_atomic(Path(path), head[:-2] + ',\n "crops": [\n' + lines + "\n ]\n}\n")


def confident_crops(model_path: Path, n: int, seed: int, spec: dict, *, min_confidence: float = 0.5,
                    exclude: Sequence[Crop] = (), batch: int = 32, pool: int = 4096) -> tuple[list[Crop], dict]:
    """The first `n` of the seeded random crops (`crop_boxes(pool, seed)`) that the FP32 model at
    `model_path` classifies with softmax top-1 >= `min_confidence`, skipping the crops in
    `exclude` (e.g. the calibration crops). Only the FP32 model decides: a crop list for
    validating quantized models against it on images where FP32 itself makes a decision (its
    top-1 does not flip under noise finer than one grey level). Returns (crops, counts)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    size = int(spec.get("resize") or 224)
    skip = set(exclude)
    candidates = [b for b in crop_boxes(pool, seed) if b not in skip]
    kept: list[Crop] = []
    seen = 0
    for start in range(0, len(candidates), batch):
        chunk = candidates[start:start + batch]
        x = np.stack([preprocess(c, spec) for c in render_crops(chunk, size)])
        logits = session.run(None, {name: x})[0].astype(np.float64)
        p = np.exp(logits - logits.max(1, keepdims=True))
        conf = p.max(1) / p.sum(1)
        for box, c in zip(chunk, conf):
            seen += 1
            if c >= min_confidence:
                kept.append(box)
                if len(kept) == n:
                    return kept, {"drawn": seen, "kept": n, "excluded": pool - len(candidates)}
    raise UserError(f"only {len(kept)} of {pool} crops are confident (>= {min_confidence}); raise pool")


def _main(argv: Sequence[str] | None = None) -> None:
    """python -m trtmake.image_dataset MODEL OUT --seed S --num N [--exclude-seed S2 --exclude-num M]"""
    import argparse

    ap = argparse.ArgumentParser(description="write a crop list of FP32-confident photo crops")
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--num", type=int, default=128)
    ap.add_argument("--min-confidence", type=float, default=0.5)
    ap.add_argument("--exclude-seed", type=int, action="append", default=[],
                    help="skip the random crops of this seed (e.g. the calibration seed)")
    ap.add_argument("--exclude-num", type=int, default=1024)
    ap.add_argument("--exclude-list", type=Path, action="append", default=[], help="skip the crops of this list")
    ap.add_argument("--resize", type=int, default=224)
    args = ap.parse_args(argv)
    spec = {"resize": args.resize, "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3}
    exclude = [b for s in args.exclude_seed for b in crop_boxes(args.exclude_num, s)]
    exclude += [b for path in args.exclude_list for b in read_crop_list(path)]
    boxes, counts = confident_crops(args.model, args.num, args.seed, spec, min_confidence=args.min_confidence,
                                    exclude=exclude)
    write_crop_list(args.out, boxes, rule=(
        f"the first {args.num} random crops (trtmake.image_dataset.crop_boxes, seed {args.seed}, side "
        f"{CROP_SCALE[0]:.0%}-{CROP_SCALE[1]:.0%} of the shorter side) that FP32 EfficientNet-Lite0 classifies "
        f"with softmax top-1 >= {args.min_confidence}; none of the random crops of seeds {args.exclude_seed} "
        f"(first {args.exclude_num}) or of {[str(p) for p in args.exclude_list]}"), seed=args.seed, **counts)
    print(f"{args.out}: {len(boxes)} crops ({counts})")


if __name__ == "__main__":
    _main()
