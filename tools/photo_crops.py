"""Write a crop list of FP32-confident photo crops (the validation set of the photo recipes).

    python tools/photo_crops.py MODEL OUT --seed S --num N [--exclude-seed S2 --exclude-num M]

A crop list names square crops of scikit-image's photographs ([photo, top, left, side] each);
`trtmake.image_dataset.read_crop_list` reads it for `dataset.kind=skimage`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the trtmake of this checkout

from trtmake.atomic import write_text_atomic  # noqa: E402
from trtmake.errors import UserError  # noqa: E402
from trtmake.image_dataset import (  # noqa: E402
    CROP_LIST_FORMAT,
    CROP_SCALE,
    Crop,
    crop_boxes,
    preprocess,
    read_crop_list,
    render_crops,
)


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
    """python tools/photo_crops.py MODEL OUT --seed S --num N [--exclude-seed S2 --exclude-num M]"""
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
