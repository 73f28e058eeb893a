"""How long a push and a fetch of one large object take through the remote cache (trtmake.remote):
to moto's S3 server on 127.0.0.1 (s3fs over HTTP; no network, so this measures trtmake's,
s3fs's and the server's own cost, not a link) and to a folder remote.

    time python3 benchmarks/remote_fetch.py [--mb 100] [--runs 3] [--work DIR]

Each run: a fresh local cache holds one record with one object of --mb random MB (published by
Cache.put_file); `push` uploads it (object, then record) to a fresh bucket or folder; `fetch`
downloads it into another fresh cache (record, object streamed and BLAKE3-hashed, put_file).
Writes benchmarks/results/remote_fetch.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import loadavg, machine, start_moto_s3, table, work_dir, write_result  # noqa: E402

from trtmake.cache import ActionRecord, Cache, Output  # noqa: E402
from trtmake.remote import Remote  # noqa: E402


def one_run(work: Path, url: str, options: dict, megabytes: int, run: int) -> dict[str, float]:
    here = Cache(work / f"here-{run}")
    here.ensure_writable()
    src = here.root / "tmp" / "engine"
    with open(src, "wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1 << 20))
    out = here.put_file(src)
    key = uuid.uuid4().hex * 2
    record = here.put_action(ActionRecord(key, {"engine": Output(**out)}, stage="build"))

    started = time.perf_counter()
    assert Remote(url, "read-write", options).push(here, key, record)
    pushed = time.perf_counter() - started

    there = Cache(work / f"there-{run}")
    there.ensure_writable()
    started = time.perf_counter()
    assert Remote(url, "read-write", options).fetch(there, key) is not None, there.warnings
    fetched = time.perf_counter() - started
    return {"push_s": pushed, "fetch_s": fetched}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    import boto3

    server, endpoint = start_moto_s3()
    rows, data = [], {"machine": machine(), "megabytes": args.mb, "runs": args.runs, "remotes": {}}
    try:
        with work_dir(args.work, "trtmake-bench-remote-") as work:
            for kind in ("s3 (moto, 127.0.0.1)", "folder"):
                times = []
                for run in range(args.runs):
                    if kind == "folder":
                        url, options = str(work / f"remote-{run}"), {}
                    else:
                        bucket = f"bench-{uuid.uuid4().hex[:12]}"
                        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
                        url, options = f"s3://{bucket}/cache", {"client_kwargs": {"endpoint_url": endpoint}}
                    times.append(one_run(work / kind.split()[0], url, options, args.mb, run))
                push = statistics.median(t["push_s"] for t in times)
                fetch = statistics.median(t["fetch_s"] for t in times)
                data["remotes"][kind] = {"runs": times, "push_median_s": push, "fetch_median_s": fetch}
                rows.append([kind, args.mb, push, args.mb / push, fetch, args.mb / fetch])
    finally:
        server.stop()
    table(f"remote cache, one {args.mb} MB object, median of {args.runs} (load {loadavg()})",
          ["remote", "MB", "push s", "push MB/s", "fetch s", "fetch MB/s"], rows)
    print("results:", write_result("remote_fetch", data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
