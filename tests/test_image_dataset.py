"""Image folders with declared preprocessing, and real photo crops for tests/benchmarks."""

from __future__ import annotations

import numpy as np
import pytest

from trtmake.datasets import source_files
from trtmake.errors import UserError
from trtmake.image_dataset import load_images, preprocess, skimage_crops, to_rgb

EFFICIENTNET = {"resize": 224, "center_crop": 224, "scale": 1 / 255, "mean": [0.5, 0.5, 0.5],
                "std": [0.5, 0.5, 0.5], "layout": "NCHW", "dtype": "float32"}


def _folder(path):
    return source_files({"kind": "images", "path": str(path)}, "dataset", path)


@pytest.fixture
def photo_crops(monkeypatch):
    """tools/photo_crops.py (a script, not part of the library)."""
    from conftest import ROOT

    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import photo_crops

    return photo_crops


def _save(path, image):
    from skimage import io

    io.imsave(str(path), image, check_contrast=False)
    return path


def test_efficientnet_preprocessing_of_a_real_photo():
    import skimage.data

    x = preprocess(skimage.data.chelsea(), EFFICIENTNET)  # 300x451 RGB
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert -1.0 <= x.min() < -0.5 and 0.5 < x.max() <= 1.0


def test_scale_mean_std_layout_and_dtype():
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 0, 51
    x = preprocess(image, {"scale": 1 / 255, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.25], "layout": "NHWC"})
    assert x.shape == (4, 6, 3)
    assert x[0, 0].tolist() == pytest.approx([1.0, -1.0, -1.2])
    nchw = preprocess(image, {"dtype": "float16"})
    assert nchw.shape == (3, 4, 6) and nchw.dtype == np.float16 and nchw[2, 0, 0] == 51
    assert preprocess(image, {"color": "BGR", "layout": "NHWC", "dtype": "uint8"})[0, 0].tolist() == [51, 0, 255]


def test_empty_mean_and_std_lists_mean_no_normalization():
    image = np.full((2, 2, 3), 10, np.uint8)
    x = preprocess(image, {"mean": [], "std": [], "scale": 1.0, "resize": None, "center_crop": None})
    assert (x == 10).all()


def test_grayscale_and_rgba_become_rgb():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb(gray).shape == (3, 4, 3) and (to_rgb(gray)[..., 2] == gray).all()
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 3] = 255
    assert to_rgb(rgba).shape == (3, 4, 3) and not to_rgb(rgba).any()
    assert preprocess(gray, {"layout": "NCHW"}).shape == (3, 3, 4)


def test_resize_keeps_the_aspect_ratio_then_center_crop():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 90:110] = 255  # a bright bar in the middle
    x = preprocess(image, {"resize": 50, "layout": "NHWC"})
    assert x.shape == (50, 100, 3)
    x = preprocess(image, {"resize": 50, "center_crop": 20, "layout": "NHWC"})
    assert x.shape == (20, 20, 3) and x[:, 10].min() > 200  # the bar stays centred
    assert preprocess(image, {"resize": [30, 40], "layout": "NHWC"}).shape == (30, 40, 3)


def test_bad_specs_are_user_errors():
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(UserError, match="unknown preprocessing keys \\['normalize'\\]"):
        preprocess(image, {"normalize": True})
    with pytest.raises(UserError, match="layout: 'CHW' is not NCHW or NHWC"):
        preprocess(image, {"layout": "CHW"})
    with pytest.raises(UserError, match="crop 20x20 is larger than the image 10x10"):
        preprocess(image, {"center_crop": 20})
    with pytest.raises(UserError, match="resize: give a positive int"):
        preprocess(image, {"resize": 0})
    with pytest.raises(UserError, match="std: must not contain 0"):
        preprocess(image, {"std": [1, 0, 1]})


def test_load_image_folder_in_filename_order(tmp_path):
    for name, value in (("b.png", 20), ("a.png", 10), ("c.jpg", 30)):
        _save(tmp_path / name, np.full((8, 8, 3), value, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    files = _folder(tmp_path)
    assert [f.name for f in files] == ["a.png", "b.png", "c.jpg"]
    samples = load_images(files, {"layout": "NCHW"})
    assert [int(round(float(s.mean()))) for s in samples] == [10, 20, 30]
    assert [s.shape for s in load_images(files[:2], {"layout": "NHWC"})] == [(8, 8, 3), (8, 8, 3)]


def test_an_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="holds no .png/.jpg/.* files; add samples or fix the path"):
        _folder(tmp_path)
    with pytest.raises(UserError, match="missing does not exist"):
        _folder(tmp_path / "missing")


def test_an_unreadable_image_is_a_user_error_naming_the_file(tmp_path):
    _save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"\x89PNG but truncated")
    with pytest.raises(UserError, match="b.png: not a readable image .* replace or remove it"):
        load_images(_folder(tmp_path), {})


def test_skimage_crops_are_seeded_real_photo_crops():
    a, b, c = skimage_crops(4, seed=5, size=64), skimage_crops(4, seed=5, size=64), skimage_crops(4, seed=6, size=64)
    assert all(x.shape == (64, 64, 3) and x.dtype == np.uint8 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not any(np.array_equal(x, y) for x, y in zip(a, c))
    assert np.std(np.stack(a).astype(float)) > 20  # photographs, not flat noise


def test_crop_boxes_render_to_the_same_crops_as_skimage_crops():
    from trtmake.image_dataset import crop_boxes, render_crops

    boxes = crop_boxes(5, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(render_crops(boxes, 48), skimage_crops(5, seed=7, size=48)))
    assert crop_boxes(5, seed=7) == boxes and crop_boxes(5, seed=8) != boxes
    large = crop_boxes(40, seed=7, scale=(0.6, 1.0))
    from trtmake.image_dataset import skimage_photo

    for name, top, left, side in large:
        h, w = skimage_photo(name).shape[:2]
        assert 0.6 * min(h, w) - 1 <= side <= min(h, w) and top + side <= h and left + side <= w


def test_a_crop_list_round_trips_and_feeds_load_samples(tmp_path, photo_crops):
    from trtmake.datasets import load_samples, source_digest
    from trtmake.hashing import StatCache
    from trtmake.image_dataset import crop_boxes, read_crop_list, render_crops

    write_crop_list = photo_crops.write_crop_list
    from trtmake.profiles import InputSpec

    boxes = crop_boxes(3, seed=4)
    write_crop_list(tmp_path / "crops.json", boxes, rule="test")
    assert read_crop_list(tmp_path / "crops.json") == boxes
    spec = {"resize": 32, "scale": 1 / 255}
    src = {"kind": "skimage", "path": "crops.json", "seed": 0, "preprocess": spec}
    inputs = [InputSpec("input", "float32", ("batch", 3, 32, 32))]
    samples = load_samples(src, "dataset.validation", tmp_path, inputs, {"input": [1, 3, 32, 32]}, 2)
    expected = [preprocess(c, spec) for c in render_crops(boxes[:2], 32)]
    assert all(np.array_equal(s["input"], e) for s, e in zip(samples, expected))
    with pytest.raises(UserError, match="3 crops in crops.json but 4 are asked"):
        load_samples(src, "dataset.validation", tmp_path, inputs, {"input": [1, 3, 32, 32]}, 4)
    stat = StatCache(None)
    before = source_digest(src, "dataset.validation", tmp_path, stat)
    write_crop_list(tmp_path / "crops.json", [boxes[1], boxes[0], boxes[2]], rule="test")
    assert source_digest(src, "dataset.validation", tmp_path, stat) != before  # the list's bytes are keyed


@pytest.mark.parametrize("text, words", [
    ("not json", "not a crop list"),
    ('{"format": "other", "crops": []}', "not a crop list"),
    ('{"format": "trtmake-photo-crops", "crops": [["lena", 0, 0, 10]]}', "'lena' is not one of"),
])
def test_a_bad_crop_list_is_a_user_error(tmp_path, text, words):
    from trtmake.image_dataset import read_crop_list

    (tmp_path / "c.json").write_text(text)
    with pytest.raises(UserError, match=words):
        read_crop_list(tmp_path / "c.json")


def test_confident_crops_keep_only_what_the_fp32_model_is_sure_of(tmp_path, photo_crops):
    """The rule reads the FP32 model only: a model whose confidence follows the crop's brightness
    keeps exactly the bright crops, skips the excluded ones and records how many it drew."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from trtmake.image_dataset import crop_boxes, render_crops

    confident_crops = photo_crops.confident_crops

    # logits = [8 * mean(x), 0]: softmax top-1 >= 0.98 iff the crop is bright (mean(x) >= ~0.49)
    w = numpy_helper.from_array(np.array([[8.0 / 3, 0.0]] * 3, np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["logits"])]
    graph = helper.make_graph(nodes, "bright",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    spec = {"resize": 32, "scale": 1 / 255}
    skip = crop_boxes(12, seed=9)[8:9]  # a bright crop
    kept, counts = confident_crops(tmp_path / "m.onnx", 5, 9, spec, min_confidence=0.98, exclude=skip, pool=200)
    assert len(kept) == 5 and not set(kept) & set(skip)
    drawn = [b for b in crop_boxes(200, 9) if b not in skip][:counts["drawn"]]
    bright = [b for b, c in zip(drawn, render_crops(drawn, 32)) if 8 * preprocess(c, spec).mean() >= np.log(49)]
    assert kept == bright and counts["drawn"] > 5
