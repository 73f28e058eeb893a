"""A whole target through the remote cache: building resnet50_int8 (and pushing it) against a
fresh runner fetching it from moto's S3 server on 127.0.0.1 (s3fs over HTTP, no network: this
measures trtmake's, s3fs's and the server's own cost, not a link).

    python3 benchmarks/bench_remote_target.py [--target resnet50_int8] [--runs 3] [--work DIR]

Per run, each a `python -m trtmake` process:
- build: runner A, empty cache, builds every stage and pushes it (once);
- fetch: runner B, empty cache: every stage fetched but validate, which runs here (the default);
- fetch all: runner C with validation.trust_remote=true, every stage fetched. C first runs
  `trtmake explain` with the same overrides (untimed: it composes and stores the plan, and hashes
  the model, as any runner has done after its first run; a plan is keyed by every override,
  cache.dir and report.path included, so A's plan would never serve C), so that C differs from a
  no-op only by what it fetches;
- no-op: C again, every stage cached, in its steady state: after RACY_SECONDS and one untimed
  no-op, so that the objects C just wrote are at rest and in its stat cache (the first no-op
  after a fetch, or a build, re-hashes them once: about 0.1 s here, which would otherwise come
  off the overhead below);
- transfer: a fresh process that downloads the same records and objects with s3fs alone (one
  GET each, into a folder; s3fs's import and first connection included, as they are in C).
The fetch path's overhead beyond the transfer is fetch all - no-op - transfer.
Writes benchmarks/results/remote_target.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ROOT, bench_env, loadavg, machine, run, start_moto_s3, table, work_dir, write_result  # noqa: E402

sys.path.insert(0, str(ROOT))
from trtmake.hashing import RACY_SECONDS  # noqa: E402


def trtmake(env, cache: Path, target: str, remote: list[str], *extra: str, explain: bool = False) -> tuple[float, dict]:
    """A build (explain: `trtmake explain`, which writes no report: an empty entry) and its report's entry."""
    report = cache.parent / f"{cache.name}-report.json"
    started = time.perf_counter()
    run([sys.executable, "-m", "trtmake", *(["explain"] if explain else []), f"target={target}", f"cache.dir={cache}",
         f"report.path={report}", *remote, *extra], env)
    wall = time.perf_counter() - started
    return wall, {} if explain else json.loads(report.read_text())["targets"][0]


TRANSFER = """
import json, sys, s3fs
url, endpoint, into, *keys = sys.argv[1:]
fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
root, size = url.removeprefix("s3://"), 0
for key in keys:
    raw = fs.cat_file(f"{root}/actions/{key[:2]}/{key}.json")
    size += len(raw)
    for out in json.loads(raw)["outputs"].values():
        d = out["digest"]
        fs.get_file(f"{root}/objects/{d[:2]}/{d}", f"{into}/{d}")
        size += out["size"]
print(size)
"""


def transfer(env, url: str, endpoint: str, keys: list[str], into: Path) -> tuple[float, int]:
    """Wall seconds and bytes of a fresh process that downloads the records of `keys` and every
    object they name with s3fs alone (its import and first connection included, as in trtmake's)."""
    started = time.perf_counter()
    proc = run([sys.executable, "-c", TRANSFER, url, endpoint, str(into), *keys], env)
    return time.perf_counter() - started, int(proc.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="resnet50_int8")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    import boto3

    server, endpoint = start_moto_s3()
    creds = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    env = bench_env({**creds, "NO_PROXY": "127.0.0.1", "PYTHONPATH": str(ROOT)})
    env.pop("TRTMAKE_REMOTE", None)
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/cache"
    remote = [f"cache.remote.url={url}", f"++cache.remote.options.client_kwargs.endpoint_url={endpoint}"]
    data = {"machine": machine(), "target": args.target, "runs": args.runs, "loadavg_start": loadavg()}
    try:
        with work_dir(args.work, "trtmake-bench-remote-target-") as work:
            # trusting, so that A pushes the validate record C looks up (keyed by the device, not the host)
            build_s, built = trtmake(env, work / "a", args.target, remote, "validation.trust_remote=true")
            assert all(s["status"] == "built" for s in built["stages"]), built["stages"]
            keys = [s["key"] for s in built["stages"]]
            rows = {"fetch": [], "fetch_all": [], "noop": [], "transfer": []}
            moved = {}
            for i in range(args.runs):
                wall, entry = trtmake(env, work / f"b{i}", args.target, remote)
                assert [s["status"] for s in entry["stages"]][-1] == "built", entry["stages"]
                rows["fetch"].append(wall)
                c = work / f"c{i}"
                trtmake(env, c, args.target, remote, "validation.trust_remote=true", explain=True)
                wall, entry = trtmake(env, c, args.target, remote, "validation.trust_remote=true")
                assert all(s["status"] == "fetched" for s in entry["stages"]), entry["stages"]
                rows["fetch_all"].append(wall)
                moved = entry["remote"]
                time.sleep(RACY_SECONDS + 0.5)
                trtmake(env, c, args.target, remote, "validation.trust_remote=true")
                wall, noop = trtmake(env, c, args.target, remote, "validation.trust_remote=true")
                assert all(s["status"] == "cached" for s in noop["stages"]), noop["stages"]
                rows["noop"].append(wall)
                with tempfile.TemporaryDirectory(dir=work) as into:
                    seconds, size = transfer(env, url, endpoint, keys, Path(into))
                rows["transfer"].append(seconds)
    finally:
        server.stop()
    med = {k: statistics.median(v) for k, v in rows.items()}
    overhead = [f - n - t for f, n, t in zip(rows["fetch_all"], rows["noop"], rows["transfer"])]
    data.update(build_s=build_s, bytes_pushed=built["remote"]["bytes_out"], bytes_fetched=moved.get("bytes_in"),
                bytes_transferred=size, runs_s=rows, median_s=med, overhead_s=overhead,
                overhead_median_s=statistics.median(overhead), loadavg_end=loadavg(),
                command=f"python3 benchmarks/bench_remote_target.py --target {args.target} --runs {args.runs}")
    table(f"{args.target} through the remote cache (moto S3 on 127.0.0.1), median of {args.runs} "
          f"(load {loadavg()})", ["run", "wall s", "MB"],
          [["build + push (runner A)", build_s, built["remote"]["bytes_out"] / 1e6],
           ["fetch, validate here (runner B)", med["fetch"], None],
           ["fetch all, trust_remote (runner C)", med["fetch_all"], moved.get("bytes_in", 0) / 1e6],
           ["no-op (runner C again)", med["noop"], 0],
           ["transfer alone (a fresh s3fs process)", med["transfer"], size / 1e6],
           ["fetch path overhead (fetch all - no-op - transfer)", statistics.median(overhead), None]])
    print("results:", write_result("remote_target", data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
