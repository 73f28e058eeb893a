"""all-MiniLM-L6-v2 in FP32, FP16 and INT8, built through trtmake, measured on this machine's CPU.

    python benchmarks/bench_minilm.py [--cache /tmp/trtmake-bench-minilm] [--iters 50] [--samples 32]

Each target runs as a user runs it, in a subprocess, with both profiles of profile=minilm
(short: batch 1-8 x seq 8-64, long: batch 1-4 x seq 64-256) validated at their opt shapes:

    trtmake target=minilm_<precision> profile=minilm 'validation.shapes=[opt]' validation.num_samples=32
            validation.iters=50 'validation.streams=[1,2,4]' revalidate=true

and the report gives, per profile: latency p50/p99 (the validate stage's timed runs at opt),
cosine similarity and retrieval@1 agreement against the FP32 source model on real sentences;
per engine: samples/s with 1, 2 and 4 concurrent executions at short/opt, and memory. Speedup:
FP32's p50 over the target's at the same point. One shared cache: the export and the reference
outputs are built once. Writes benchmarks/results/minilm.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import loadavg, machine, report_entry, write_result  # noqa: E402

PRECISIONS = ("fp32", "fp16", "int8")
POINTS = ("short/opt", "long/opt")


def measure(precision: str, cache: Path, iters: int, samples: int, report: Path) -> dict:
    cmd = [sys.executable, "-m", "trtmake", f"target=minilm_{precision}", "profile=minilm", "validation.shapes=[opt]",
           f"validation.num_samples={samples}", f"validation.iters={iters}", "validation.warmup=3",
           "validation.streams=[1,2,4]", "revalidate=true", f"cache.dir={cache}", f"report.path={report}"]
    entry, seconds, _ = report_entry(cmd, report)
    if entry["error"]:
        sys.exit(f"minilm_{precision}: {entry['error']}")
    m = entry["metrics"]
    at = {m.get("point", "short/opt"): m, **m.get("at", {})}
    return {
        "command": " ".join(["trtmake", *cmd[3:]]),
        "seconds": round(seconds, 1),
        "ok": entry["ok"],
        "float_layers": entry["precision"].get("float_layers"),
        "points": {p: {"batch": at[p]["batch_size"], "latency_p50_ms": at[p]["latency_p50_ms"],
                       "latency_p99_ms": at[p]["latency_p99_ms"], "samples_per_s": at[p]["throughput"],
                       "cosine_similarity": at[p]["cosine_similarity"],
                       "cosine_similarity_min": at[p]["cosine_similarity_min"],
                       "retrieval_agreement": at[p].get("retrieval_agreement")} for p in POINTS},
        "streams": m.get("streams"),
        "memory": m.get("memory"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/trtmake-bench-minilm"))
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    info = machine()
    results = {}
    for precision in PRECISIONS:
        report = args.cache.parent / f"bench-minilm-{precision}.json"
        results[precision] = measure(precision, args.cache, args.iters, args.samples, report)
        print(f"minilm_{precision}: {results[precision]['seconds']} s (load {loadavg()})", file=sys.stderr)
    base = results["fp32"]["points"]
    for r in results.values():
        for p in POINTS:
            r["points"][p]["speedup_vs_fp32"] = base[p]["latency_p50_ms"] / r["points"][p]["latency_p50_ms"]
    path = write_result("minilm", {"machine": info, "iters": args.iters, "samples": args.samples,
                                   "targets": results})
    print("| precision | point | p50 ms | p99 ms | speedup vs fp32 | cosine (min) | retrieval@1 | "
          "samples/s 1/2/4 streams | memory MB (weights + work) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for precision, r in results.items():
        s = r["streams"] or {}
        mem = r["memory"] or {}
        for i, p in enumerate(POINTS):
            x = r["points"][p]
            extra = (f"{s.get('1', 0):.1f} / {s.get('2', 0):.1f} / {s.get('4', 0):.1f} | "
                     f"{mem.get('weights_mb', 0):.1f} + {mem.get('activation_mb') or 0:.1f}") if i == 0 else " | "
            print(f"| {precision} | {p} [{x['batch']}] | {x['latency_p50_ms']:.1f} | {x['latency_p99_ms']:.1f} | "
                  f"{x['speedup_vs_fp32']:.2f} | {x['cosine_similarity']:.5f} ({x['cosine_similarity_min']:.5f}) | "
                  f"{x['retrieval_agreement']:.3f} | {extra} |")
    print(f"written: {path} (load average {info['loadavg_start']} -> {loadavg()})")


if __name__ == "__main__":
    main()
