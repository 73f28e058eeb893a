"""Over random config overrides and random edits of the model's files, the executor
rebuilds a stage if and only if one of its declared inputs changed.

The expectation comes from this file's own model of each stage's declared inputs (README,
"Stages, keys and the cache"), not from trtmake's keys: the config keys a stage reads, the
bytes of the user's files (hashed here), and the digests of the upstream outputs it consumes
(observed). Since the cache is content-addressed and keeps every result, "changed" means "a
combination of declared inputs this cache has not built before": going back to an earlier
config or file content is a cache hit. One cache and one model file live through all examples.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fault_helpers import ROOT, stage_records

pytestmark = pytest.mark.faults

WEIGHT_BYTES = (0, 4, 8)  # least significant mantissa byte of three float32 weights: toggling keeps them finite

configs = st.fixed_dictionaries({
    "precision": st.sampled_from(["fp32", "fp16"]),
    "level": st.sampled_from(["basic", "extended", "all"]),
    "iters": st.sampled_from([3, 5]),
    "num_samples": st.sampled_from([4, 8]),
    "min_cosine": st.sampled_from([None, 0.9, 0.99]),
})
edits = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("touch"), st.sampled_from(["onnx", "weights"])),
    st.tuples(st.just("rewrite"), st.sampled_from(["onnx", "weights"]), st.booleans()),  # bool: via rename
    st.tuples(st.just("flip"), st.sampled_from(WEIGHT_BYTES)),
)
steps = st.lists(st.tuples(edits, configs), min_size=1, max_size=3)


class Workspace:
    def __init__(self, root: Path):
        import onnx

        from trtmake.models import build

        self.root = root
        self.cache, self.report = root / "cache", root / "report.json"
        self.onnx = root / "model" / "tiny.onnx"
        self.onnx.parent.mkdir(parents=True)
        onnx.save(build("tiny_cnn", {"seed": 0}), str(self.onnx), save_as_external_data=True,
                  all_tensors_to_one_file=True, location="tiny.weights", size_threshold=0)
        self.weights = self.onnx.parent / "tiny.weights"
        old = time.time() - 60
        for p in (self.onnx, self.weights):
            os.utime(p, (old, old))
        self.seen: dict[str, set] = {s: set() for s in ("source", "precision", "build", "reference", "validate")}
        self.runs = 0
        self.rebuilt = 0

    def edit(self, edit: tuple) -> None:
        kind = edit[0]
        if kind == "none":
            return
        path = self.onnx if len(edit) > 1 and edit[1] == "onnx" else self.weights
        if kind == "touch":
            os.utime(path)
        elif kind == "rewrite":
            data = path.read_bytes()
            if edit[2]:  # a new inode: write elsewhere and rename over it (what most editors do)
                tmp = path.with_suffix(".new")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            else:
                path.write_bytes(data)
        elif kind == "flip":
            data = bytearray(self.weights.read_bytes())
            data[edit[1]] ^= 0x01
            self.weights.write_bytes(bytes(data))

    def build(self, cfg: dict) -> int:
        from trtmake.cli import main

        args = ["target=tiny_cnn_fp32", "backend=onnxruntime", f"precision={cfg['precision']}",
                f"model.path={self.onnx}", "model.generator=null",
                f"backend.onnxruntime.graph_optimization_level={cfg['level']}",
                f"validation.iters={cfg['iters']}", f"validation.num_samples={cfg['num_samples']}",
                f"cache.dir={self.cache}", f"report.path={self.report}"]
        if cfg["min_cosine"] is not None:
            args.append(f"validation.min_cosine_similarity={cfg['min_cosine']}")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = main(args)
        assert code in (0, 1), err.getvalue()[-2000:]
        self.runs += 1
        return code

    def expected_and_actual(self, cfg: dict) -> tuple[dict[str, str], dict[str, str]]:
        """Statuses this model predicts (updating what it has seen) and those the report gives."""
        report = json.loads(self.report.read_text())
        target = report["targets"][0]
        assert target["error"] is None, target["error"]
        recs = stage_records(report, self.cache)
        source = (_sha(self.onnx), _sha(self.weights))
        graph = source if cfg["precision"] == "fp32" else recs["precision"]["outputs"]["onnx"]["digest"]
        declared = {
            "source": source,
            "precision": (cfg["precision"], source),
            "build": (cfg["level"], graph),
            "reference": (cfg["num_samples"], source),
            "validate": (cfg["iters"], cfg["num_samples"], cfg["min_cosine"],
                         recs["build"]["outputs"]["engine"]["digest"], recs["reference"]["outputs"]["outputs"]["digest"]),
        }
        expected = {}
        for stage, inputs in declared.items():
            expected[stage] = "cached" if inputs in self.seen[stage] else "built"
            self.seen[stage].add(inputs)
        actual = {s["name"]: s["status"] for s in target["stages"]}
        self.rebuilt += sum(v == "built" for v in actual.values())
        return expected, actual


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        mp.delenv("TRTMAKE_CACHE", raising=False)
        mp.delenv("TRTMAKE_FAULT", raising=False)
        ws = Workspace(tmp_path_factory.mktemp("property"))
        yield ws
    print(f"\nproperty: {ws.runs} runs, {ws.rebuilt} stage builds")


# One cache lives through all examples, so an example cannot be replayed alone: no shrinking,
# no example database (a failure prints its edit and config; the steps before it are in the log).
@settings(max_examples=20, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps)
def test_a_stage_rebuilds_iff_a_declared_input_changed(workspace, steps):
    for edit, cfg in steps:
        workspace.edit(edit)
        workspace.build(cfg)
        expected, actual = workspace.expected_and_actual(cfg)
        assert actual == expected, (edit, cfg)
