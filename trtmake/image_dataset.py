"""Images as model inputs, with declared preprocessing (datasets.source_files lists a folder's
image files), and crop lists of scikit-image's photographs.

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

from trtmake.errors import MissingDependency, UserError
from trtmake.heavy import lazy_import

np = lazy_import("numpy")

SPEC_KEYS = ("color", "resize", "center_crop", "scale", "mean", "std", "layout", "dtype")
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "stereo_motorcycle",
    "immunohistochemistry", "camera", "brick", "grass", "gravel", "moon", "coins", "clock",
)


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
