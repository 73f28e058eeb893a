"""EfficientNet-Lite0 in FP32, FP16 and INT8, built through trtmake, against FP32.

    python benchmarks/bench_efficientnet_precisions.py [--cache /tmp/trtmake-bench-prec] [--iters 100]

For each precision and profile (b1: batch 1, b8: batch 8) this runs
`trtmake target=efficientnet_lite0_<precision> profile=<b1|b8> validation.num_samples=128 ...`
in a subprocess (one shared cache: the export, calibration and quantization are built once and
reused by the second profile) and reads its report.json. Accuracy is agreement with the FP32
source model on the held-out photo crops of dataset `photos` (engine_recipes/dataset/photos.yaml),
at batch 1; latency is the validate stage's p50 on onnxruntime CPU at the profile's opt batch.
Writes benchmarks/results/efficientnet_precisions.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, report_entry  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "efficientnet_precisions.json"
PRECISIONS = ("fp32", "fp16", "int8")
PROFILES = {"b1": 1, "b8": 8}


def build(precision: str, profile: str, cache: Path, iters: int, samples: int, report: Path) -> dict:
    cmd = ["trtmake", f"target=efficientnet_lite0_{precision}", f"profile={profile}", f"cache.dir={cache}",
           f"validation.num_samples={samples}", f"validation.iters={iters}", f"report.path={report}"]
    entry, seconds, code = report_entry(cmd, report)
    p, m = entry["precision"], entry["metrics"]
    return {
        "command": " ".join(cmd), "exit_code": code, "wall_seconds": round(seconds, 1),
        "stages": {s["name"]: [s["status"], s["seconds"]] for s in entry["stages"]},
        "top1_agreement": m.get("top1_agreement"), "cosine_similarity": m.get("cosine_similarity"),
        "p50_ms": m.get("latency_p50_ms"), "p99_ms": m.get("latency_p99_ms"), "samples_per_s": m.get("throughput"),
        "float_layers": p.get("float_layers"), "quantized_nodes": p.get("quantized_nodes"),
        "method": p.get("method"), "dialect": p.get("dialect"),
        "assertions": [[a["metric"], a["op"], a["value"], a["actual"], a["passed"]] for a in entry["assertions"]],
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "trtmake-bench-prec")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--samples", type=int, default=128)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision in PRECISIONS:
            row = {"precision": precision}
            for profile, batch in PROFILES.items():
                report = Path(tmp) / f"{precision}_{profile}.json"
                r = build(precision, profile, args.cache, args.iters, args.samples, report)
                row[profile] = r
                print(f"{precision} {profile}: exit {r['exit_code']}, top1 {r['top1_agreement']}, "
                      f"cos {r['cosine_similarity']}, p50 {r['p50_ms']} ms, {r['wall_seconds']} s", flush=True)
            rows.append(row)
    import onnxruntime

    result = {"model": "efficientnet_lite0", "machine": platform.machine(), "cpus": os.cpu_count(),
              "onnxruntime": onnxruntime.__version__, "validation_samples": args.samples, "iters": args.iters,
              "dataset": "photos (engine_recipes/dataset/photos.yaml): held-out FP32-confident crops",
              "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(table(result))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def _f(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def table(result: dict) -> str:
    lines = ["| precision | top-1 agreement vs FP32 | cosine | p50 batch 1 (ms) | p50 batch 8 (ms) | "
             "per image at batch 8 (ms) | float layers |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        b1, b8 = row["b1"], row["b8"]
        per_image = None if b8["p50_ms"] is None else b8["p50_ms"] / PROFILES["b8"]
        layers = b1["float_layers"] if row["precision"] == "int8" else "n/a"
        lines.append(f"| {row['precision']} | {_f(b1['top1_agreement'], '.3f')} | {_f(b1['cosine_similarity'], '.5f')} "
                     f"| {_f(b1['p50_ms'], '.2f')} | {_f(b8['p50_ms'], '.2f')} | {_f(per_image, '.2f')} | {layers} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
