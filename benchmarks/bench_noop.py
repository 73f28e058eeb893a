"""The cost of doing nothing.

    python benchmarks/bench_noop.py                 # all three (the 1 GB model needs ~3 GB of disk)
    python benchmarks/bench_noop.py --skip-large    # sections 1 and 2 only

1. One up-to-date target, process start to exit, against `python -c pass`, `import hydra`
   and a bare `@hydra.main` app; which heavy packages the no-op imports (`-X importtime`).
2. `trtmake status` over 200 up-to-date targets (copies of tiny_cnn_fp32 in a temp project),
   with and without cached plans, and a multirun (`-m 'target=glob(bench_*)'`) over them.
3. A ~1 GB model with external data, built once: the no-op build and `status` on it, the bytes
   the process read (rchar from /proc/self/io: page-cache hits included), a build right after
   the weights file was touched (its bytes re-hashed, nothing rebuilt; before and after), and
   hash speeds.

"before" rows run the committed code (HEAD, or --before REV, exported with `git archive`); "after"
rows the working tree. Writes benchmarks/results/noop.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
from bench_common import ROOT, before_tree, bench_env, loadavg, machine, run, table, timed, work_dir, write_result  # noqa: E402

PY = sys.executable
HEAVY = ("onnx", "onnxruntime", "tensorrt", "numpy", "hydra", "omegaconf", "torch")

BARE_APP = '''
import hydra
@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    pass
main()
'''

TOUCHED = '''
import os, runpy, sys, time
weights = sys.argv.pop(1)
stamp = time.time() - 30  # a new mtime on every run, outside the racy window: the stat cache re-hashes
os.utime(weights, (stamp, stamp))
sys.argv = ["trtmake", *sys.argv[1:]]
runpy.run_module("trtmake", run_name="__main__")
'''

RCHAR = '''
import atexit, runpy, sys
def _dump():
    io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    sys.stderr.write(f"\\nRCHAR {io['rchar']}\\n")
atexit.register(_dump)
sys.argv = ["trtmake", *sys.argv[1:]]
runpy.run_module("trtmake", run_name="__main__")
'''


def heavy_imports(cmd: list[str], env, cwd=ROOT) -> list[str]:
    proc = run([PY, "-X", "importtime", *cmd], env, cwd)
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return sorted(n for n in names if n in HEAVY)


def goal1(work: Path, runs: int) -> dict:
    after, before = bench_env(), bench_env(pythonpath=before_tree())
    # one cache per tree: a cache-format change between them would make every run of one a rebuild
    args = ["-m", "trtmake", "target=tiny_cnn_fp32", f"cache.dir={work / 'g1cache'}", f"report.path={work / 'r.json'}"]
    args_before = [*args[:3], f"cache.dir={work / 'g1cache_before'}", args[4]]
    run([PY, *args], after)  # build once
    run([PY, *args_before], before, cwd=before_tree())
    app = work / "bare_app"
    (app / "conf").mkdir(parents=True, exist_ok=True)
    (app / "conf" / "config.yaml").write_text("a: 1\nhydra:\n  output_subdir: null\n  run:\n    dir: .\n")
    (app / "app.py").write_text(BARE_APP)
    rows = {
        "python -c pass": timed([PY, "-c", "pass"], after, runs),
        "python -c 'import hydra'": timed([PY, "-c", "import hydra"], after, runs),
        "bare @hydra.main app": timed([PY, "app.py"], after, runs, cwd=app),
        f"trtmake no-op, before ({bench_common.BEFORE})": timed([PY, *args_before], before, runs, cwd=before_tree()),
        "trtmake no-op, after, plan cache off": timed([PY, *args], bench_env({"TRTMAKE_PLAN_CACHE": "0"}), runs),
        "trtmake no-op, after": timed([PY, *args], after, runs),
    }
    hydra = rows["python -c 'import hydra'"]["median_s"]
    for r in rows.values():
        r["x_import_hydra"] = r["median_s"] / hydra
    imports = {"before": heavy_imports(args_before, before, cwd=before_tree()), "after": heavy_imports(args, after)}
    table(f"One up-to-date target, process start to exit ({runs} runs, load {loadavg()})",
          ["process", "median s", "min s", "x import hydra"],
          [[k, v["median_s"], v["min_s"], v["x_import_hydra"]] for k, v in rows.items()])
    print(f"heavy packages imported by the no-op: before {imports['before'] or 'none'}, after {imports['after'] or 'none'}")
    return {"rows": rows, "heavy_imports": imports, "goal": "after <= 4x import hydra",
            "met": rows["trtmake no-op, after"]["x_import_hydra"] <= 4}


def make_project(dest: Path, src: Path, n: int) -> Path:
    for folder in ("conf", "engine_recipes"):
        shutil.copytree(src / folder, dest / folder, dirs_exist_ok=True)
    text = (src / "engine_recipes" / "target" / "tiny_cnn_fp32.yaml").read_text()
    for i in range(n):
        (dest / "engine_recipes" / "target" / f"bench_{i:03d}.yaml").write_text(text)
    old = time.time() - 60  # outside the plan cache's racy window, as a checked-out tree is
    for p in dest.rglob("*.yaml"):
        os.utime(p, (old, old))
    return dest


def goal2(work: Path, n: int) -> dict:
    out = {}
    rows = []
    for label, src, path in (("after", ROOT, None), (f"before ({bench_common.BEFORE})", before_tree(), before_tree())):
        project = make_project(work / f"project_{label.split()[0]}", src, n)
        env = bench_env({"TRTMAKE_PROJECT": str(project)}, pythonpath=path)
        cache = work / f"g2cache_{label.split()[0]}"
        common = [f"cache.dir={cache}", f"report.path={work / 'r2.json'}"]
        run([PY, "-m", "trtmake", "target=bench_000", *common], env, cwd=project)  # all 200 share its keys
        status = [PY, "-m", "trtmake", "status", "target=bench_*", f"cache.dir={cache}"]
        first = timed(status, env, runs=1, warmup=0, cwd=project)
        proc = run(status, env, cwd=project)
        assert f"{n} up to date" in proc.stdout, proc.stdout[-500:]
        again = timed(status, env, runs=3, warmup=0, cwd=project) if label == "after" else None
        # a multirun over the same targets (the same overrides as status: its plans serve the jobs)
        multirun = [PY, "-m", "trtmake", "-m", "target=glob(bench_*)", f"cache.dir={cache}"]
        sweep = timed(multirun, env, runs=3 if label == "after" else 1, warmup=0, cwd=project)
        out[label] = {"first_status_s": first["median_s"], "status_s": (again or first)["median_s"],
                      "multirun_s": sweep["median_s"]}
        rows.append([f"{label}: status, first run (composes {n})", first["median_s"]])
        if again:
            rows.append([f"{label}: status, plans cached (median of 3)", again["median_s"]])
        rows.append([f"{label}: multirun -m 'target=glob(bench_*)', every job up to date"
                     + (" (median of 3)" if label == "after" else ""), sweep["median_s"]])
    table(f"trtmake status over {n} up-to-date targets (load {loadavg()})", ["run", "wall s"], rows)
    return {"targets": n, "runs": out, "goal": "<= 5 s", "met": out["after"]["status_s"] <= 5}


def make_large_model(path: Path, layers: int, width: int) -> int:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    prev = "x"
    for i in range(layers):
        w = (rng.standard_normal((width, width), dtype=np.float32) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["batch", width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=path.stem + ".weights", size_threshold=0)
    return (path.parent / (path.stem + ".weights")).stat().st_size


def hash_speeds(size: int = 256 << 20) -> dict[str, float]:
    data = os.urandom(size)
    out = {}
    from blake3 import blake3

    algos = {"sha256": lambda b: hashlib.sha256(b).digest(), "blake2b": lambda b: hashlib.blake2b(b).digest(),
             "blake3, 1 thread": lambda b: blake3(b).digest(),
             "blake3, all cores (trtmake)": lambda b: blake3(b, max_threads=blake3.AUTO).digest()}
    try:
        import xxhash

        algos["xxh3_128"] = lambda b: xxhash.xxh3_128(b).digest()
    except ImportError:
        pass
    for name, fn in algos.items():
        best = min(_time(fn, data) for _ in range(3))
        out[name] = size / best / 1e9
    return out


def _time(fn, data) -> float:
    started = time.perf_counter()
    fn(data)
    return time.perf_counter() - started


def goal3(work: Path, runs: int, layers: int, width: int) -> dict:
    model = work / "big" / "big.onnx"
    weights = make_large_model(model, layers, width)
    old = time.time() - 60
    for p in model.parent.iterdir():
        os.utime(p, (old, old))
    project = make_project(work / "project_big", ROOT, 0)
    (project / "engine_recipes" / "profile" / "big_b1.yaml").write_text(
        f"name: b1\nshapes:\n  x: {{min: [1, {width}], opt: [1, {width}], max: [8, {width}]}}\n")
    (project / "engine_recipes" / "target" / "big_fp32.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /precision: fp32\n  - override /profile: big_b1\n"
        f"model:\n  name: big\n  path: {model}\n  generator: null\n  synthetic_weights: true\n"
        "validation:\n  num_samples: 2\n  iters: 3\n  warmup: 1\n")
    for p in project.rglob("*.yaml"):
        os.utime(p, (old, old))
    env = bench_env({"TRTMAKE_PROJECT": str(project)})
    cache = work / "g3cache"
    args = ["target=big_fp32", f"cache.dir={cache}", f"report.path={work / 'r3.json'}"]
    started = time.perf_counter()
    run([PY, "-m", "trtmake", *args], env, cwd=project)
    build_s = time.perf_counter() - started
    for p in cache.rglob("*"):  # a later no-op: objects are older than the stat cache's racy window
        if p.is_file():
            os.utime(p, (old, old))
    run([PY, "-m", "trtmake", *args], env, cwd=project)  # records the aged objects' stat
    tiny_cache = work / "g1cache"
    tiny = ["target=tiny_cnn_fp32", f"cache.dir={tiny_cache}", f"report.path={work / 'r.json'}"]
    run([PY, "-m", "trtmake", *tiny], env)  # the tiny target's plan for this project
    rows = {
        "tiny_cnn no-op build": timed([PY, "-m", "trtmake", *tiny], env, runs, cwd=project),
        "1 GB model no-op build": timed([PY, "-m", "trtmake", *args], env, runs, cwd=project),
        "1 GB model status": timed([PY, "-m", "trtmake", "status", *args[:-1]], env, runs, cwd=project),
    }
    weights_file = next(model.parent.glob("*.weights"))
    for label, tree in (("after", None), (f"before ({bench_common.BEFORE})", before_tree())):
        env_t = bench_env({"TRTMAKE_PROJECT": str(project)}, pythonpath=tree)
        cache_t = work / f"g3cache_touch_{label.split()[0]}"
        args_t = ["target=big_fp32", f"cache.dir={cache_t}", f"report.path={work / 'r3t.json'}"]
        run([PY, "-m", "trtmake", *args_t], env_t, cwd=project)  # built once, in this tree's cache format
        rows[f"1 GB model, weights touched (re-hashed, nothing rebuilt), {label}"] = timed(
            [PY, "-c", TOUCHED, str(weights_file), *args_t], env_t, runs, cwd=project)
    rchar = {}
    for label, cmd in (("1 GB model no-op build", args), ("1 GB model status", ["status", *args[:-1]]),
                       ("tiny_cnn no-op build", tiny)):
        proc = run([PY, "-c", RCHAR, *cmd], env, cwd=project)
        rchar[label] = int(proc.stderr.rsplit("RCHAR ", 1)[1].split()[0])
    speeds = hash_speeds()
    extra = rows["1 GB model no-op build"]["median_s"] - rows["tiny_cnn no-op build"]["median_s"]
    table(f"{weights / 1e9:.2f} GB of external data, built once in {build_s:.0f} s ({runs} runs, "
          f"load {loadavg()})", ["process", "median s", "min s", "bytes read (rchar)"],
          [[k, v["median_s"], v["min_s"], f"{rchar[k] / 1e6:.1f} MB" if k in rchar else ""] for k, v in rows.items()])
    table("hash speed, in memory (GB/s, best of 3 over 256 MiB)", ["algorithm", "GB/s"],
          [[k, v] for k, v in speeds.items()])
    print(f"no-op on the 1 GB model costs {extra * 1000:.0f} ms more than on tiny_cnn")
    return {"weights_bytes": weights, "first_build_s": build_s, "rows": rows, "rchar": rchar,
            "extra_ms": extra * 1000, "hash_gb_per_s": speeds,
            "goal": "reads no weight bytes, <= 50 ms beyond the no-op",
            "met": rchar["1 GB model no-op build"] < weights / 100 and extra <= 0.05}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--layers", type=int, default=16, help="MatMul layers of the large model")
    ap.add_argument("--width", type=int, default=4096, help="16 x 4096^2 float32 = 1.07 GB")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir, removed)")
    ap.add_argument("--before", default="HEAD", help="the revision of the 'before' rows")
    args = ap.parse_args()
    bench_common.BEFORE = args.before
    with work_dir(args.work, "trtmake-bench-noop-") as work:
        result = {"machine": machine()}
        result["goal1"] = goal1(work, args.runs)
        result["goal2"] = goal2(work, args.targets)
        if not args.skip_large:
            result["goal3"] = goal3(work, args.runs, args.layers, args.width)
    print(f"wrote {write_result('noop', result)}")


if __name__ == "__main__":
    main()
