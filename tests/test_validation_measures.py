"""Validation beyond accuracy at one point: several named profiles in one engine (each point on its
own profile), memory and its budget, concurrent streams, a sweep of shapes, and the HTML page
(report.html) that shows them, through the real CLI on tiny_cnn (profile=tiny_two: batch 1-2 and
2-4, overlapping at 2)."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

import trt_models
from trt_double import install
from trtmake.backends.base import BuildSpec
from trtmake.backends.onnxruntime import OnnxruntimeBackend, OrtOptions
from trtmake.backends.tensorrt import TensorRTBackend, TrtOptions
from trtmake.errors import UserError
from trtmake.profiles import Profile, ShapeRange
from trtmake.shape_sweep import grid

FAST = ("validation.iters=2", "validation.warmup=0", "validation.num_samples=4")
POINTS = {f"{p}/{q}" for p in ("small", "large") for q in ("min", "opt", "max")}


class Page(HTMLParser):
    """Tables (their data-table name -> rows of cell texts) and images of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("data-table", "?")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_two_profiles_are_validated_at_every_point_by_name(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "profile=tiny_two", "validation.shapes=[min,opt,max]", *FAST) == 0, \
        trtmake.last_err
    t = trtmake.report["targets"][0]
    m = t["metrics"]
    assert m["point"] == "small/opt" and set(m["at"]) | {"small/opt"} == POINTS
    assert m["batch_size"] == 1 and m["at"]["large/opt"]["batch_size"] == 3
    # the recipe's cosine assertion at `opt` holds at the opt point of each profile
    assert {a["shape"] for a in t["assertions"] if a["metric"] == "cosine_similarity"} == {"small/opt", "large/opt"}
    assert all(a["passed"] for a in t["assertions"])


def test_tensorrt_runs_each_point_on_its_own_profile(trtmake, monkeypatch):
    """small/max and large/min are both batch 2, which either profile holds: each must run on
    the profile it belongs to, not on the first that fits."""
    from polygraphy.backend.trt import TrtRunner

    install(monkeypatch, version="11.4.0.106", cuda="fake")
    seen = []
    infer = TrtRunner.infer

    def spy(self, feed_dict, *args, **kwargs):
        seen.append((next(iter(feed_dict.values())).shape[0], self.context.active_optimization_profile))
        return infer(self, feed_dict, *args, **kwargs)

    monkeypatch.setattr(TrtRunner, "infer", spy)
    code = trtmake("target=tiny_cnn_fp32", "profile=tiny_two", "backend=tensorrt", "validation.shapes=[min,opt,max]",
                   "validation.num_samples=2", "validation.iters=1", "validation.warmup=0")
    assert code == 0, trtmake.last_err
    assert {(2, 0), (2, 1), (1, 0), (3, 1), (4, 1)} <= set(seen)
    assert not {(1, 1), (3, 0), (4, 0)} & set(seen)
    assert set(trtmake.report["targets"][0]["metrics"]["at"]) | {"small/opt"} == POINTS


def test_sweep_streams_memory_and_html_page_through_the_cli(trtmake, tmp_path):
    page = tmp_path / "out" / "report.html"
    code = trtmake("target=tiny_cnn_fp32", "profile=tiny_two", "validation.sweep.batch=[1,2,3,4]",
                   "validation.streams=[1,2]", "validation.max_memory_mb=1000", f"report.html={page}", *FAST)
    assert code == 0, trtmake.last_err
    t = trtmake.report["targets"][0]
    m = t["metrics"]
    assert [(p["batch"], p["seq"], p["profile"]) for p in m["sweep"]] == [
        (1, None, "small"), (2, None, "small"), (3, None, "large"), (4, None, "large")]
    assert all(p["latency_ms"] > 0 and p["samples_per_s"] > 0 for p in m["sweep"])
    assert set(m["streams"]) == {"1", "2"} and all(v > 0 for v in m["streams"].values())
    memory = m["memory"]
    assert 0 < memory["weights_mb"] <= memory["engine_file_mb"] and memory["activation_mb"] >= 0
    assert memory["total_mb"] == pytest.approx(memory["weights_mb"] + memory["activation_mb"])
    budget = [a for a in t["assertions"] if a["metric"] == "memory_mb"]
    assert budget == [{"metric": "memory_mb", "op": "<=", "value": 1000.0, "shape": "engine",
                       "actual": memory["total_mb"], "passed": True}]

    html = Page(page.read_text())
    summary = html.tables["summary"]
    assert summary[0][0] == "target" and len(summary) == 2 and summary[1][0].startswith("tiny_cnn_fp32")
    assert summary[1][1] == "pass"
    layers = html.tables["layer precisions"]
    assert len(layers) > 1 and sum(int(r[1]) for r in layers[1:]) == t["layer_info"]["layers_after"]
    assert {r[0] for r in html.tables["memory"][1:]} >= {"engine_file_mb", "weights_mb", "activation_mb"}
    assert [r[0] for r in html.tables["streams"][1:]] == ["1", "2"]
    # no sequence axis: one plot, against batch size
    assert [i["alt"] for i in html.images] == ["latency and throughput against batch size"]
    assert all(i["src"].startswith("data:image/png;base64,") for i in html.images)
    assert "http://" not in page.read_text() and "https://" not in page.read_text()  # self-contained


def test_a_multirun_writes_one_html_page_for_every_job(trtmake, tmp_path):
    page = tmp_path / "sweep.html"
    assert trtmake("-m", "target=tiny_cnn_fp32,tiny_cnn_fp16", f"report.html={page}", *FAST) == 0, trtmake.last_err
    rows = Page(page.read_text()).tables["summary"][1:]
    assert sorted(r[0].split(" [")[0] for r in rows) == ["tiny_cnn_fp16", "tiny_cnn_fp32"]
    assert all(r[1] == "pass" for r in rows)


def test_a_memory_budget_below_the_engine_fails_the_target(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "validation.max_memory_mb=0.0001", *FAST) == 1
    verdict = next(a for a in trtmake.report["targets"][0]["assertions"] if a["metric"] == "memory_mb")
    assert verdict["passed"] is False and verdict["actual"] > 0.0001


@pytest.mark.parametrize("overrides, words", [
    (["validation.sweep.batch=[2,8]"], ["validation.sweep: batch 8", "outside every profile"]),
    (["validation.sweep.seq=[16]"], ["validation.sweep.seq:", "no input", "dynamic axis 1"]),
    (["validation.streams=[0]"], ["validation.streams[0]: 0", ">= 1"]),
    (["validation.streams=[2,2]"], ["validation.streams:", "repeats"]),
    (["validation.sweep.batch=[1.5]"], ["validation.sweep.batch[0]"]),
    (["validation.max_memory_mb=-1"], ["validation.max_memory_mb: -1", "> 0"]),
    (["validation.assertions=[{metric: retrieval_agreement, op: '>=', value: 0.9}]"],
     ["validation.assertions[0]", "validation.retrieval_k"]),
    (["profile=tiny_two", "validation.assertions=[{metric: cosine_similarity, value: 0.9, shape: huge/opt}]"],
     ["validation.assertions[0].shape: 'huge/opt'", "small", "large"]),
    (["profile=tiny_two", "++profile.shapes.input={min: [1,3,32,32], opt: [1,3,32,32], max: [1,3,32,32]}"],
     ["profile.profiles:", "not both"]),
])
def test_bad_measure_settings_fail_at_planning_with_one_line(trtmake, overrides, words):
    assert trtmake("target=tiny_cnn_fp32", *overrides) == 2
    err = trtmake.last_err.strip()
    assert len(err.splitlines()) == 1 and len(err) < 400, err
    assert all(w in err for w in words), err
    assert not [p for p in trtmake.cache_files() if "objects" in p.parts]


# -- pieces ------------------------------------------------------------------------------------
SEQ = {n: ShapeRange((1, 8), (4, 32), (8, 64)) for n in ("ids", "mask")}
LONG = {n: ShapeRange((1, 64), (2, 128), (4, 256)) for n in ("ids", "mask")}


def test_grid_places_each_point_in_the_first_profile_that_holds_it():
    profiles = (Profile("short", SEQ), Profile("long", LONG))
    points = grid(profiles, {"batch": [1, 4], "seq": [16, 64, 200]})
    assert [(p.batch, p.seq, p.profile) for p in points] == [
        (1, 16, 0), (1, 64, 0), (1, 200, 1), (4, 16, 0), (4, 64, 0), (4, 200, 1)]
    assert points[2].shapes == {"ids": (1, 200), "mask": (1, 200)}
    assert grid(profiles, {"seq": [128]})[0].shapes["ids"] == (2, 128)  # batch at long's opt
    assert grid(profiles, {"batch": [], "seq": []}) == []
    with pytest.raises(UserError, match="batch 8, seq 200 lies outside every profile"):
        grid(profiles, {"batch": [8], "seq": [200]})


def test_grid_leaves_fixed_axes_alone():
    image = Profile("b", {"image": ShapeRange((1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 32, 32))})
    assert grid((image,), {"batch": [3]})[0].shapes == {"image": (3, 3, 32, 32)}


def test_onnxruntime_runner_serves_every_profile(tmp_path):
    model = trt_models.conv_relu(tmp_path / "model.onnx")
    (tmp_path / "w").mkdir()
    engine = OnnxruntimeBackend().build(BuildSpec(model, (), OrtOptions()), tmp_path / "w").engine_path
    with OnnxruntimeBackend().load(engine, OrtOptions()) as runner:
        runner.select_profile(3)  # no profiles: nothing to select
        assert runner.infer({"input": np.ones((2, 3, 8, 8), np.float32)})
        with pytest.raises(ValueError, match="profile index"):
            runner.select_profile(-1)


def test_tensorrt_runner_refuses_a_profile_it_lacks_or_shapes_outside_the_chosen_one(monkeypatch, tmp_path):
    install(monkeypatch, version="10.13.3.9", cuda="fake")
    model = trt_models.conv_relu(tmp_path / "model.onnx")
    two = (Profile("small", {"input": ShapeRange((1, 3, 8, 8), (1, 3, 8, 8), (2, 3, 8, 8))}),
           Profile("large", {"input": ShapeRange((2, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))}))
    engine = TensorRTBackend().build(BuildSpec(model, two, TrtOptions()), tmp_path / "w").engine_path
    with TensorRTBackend().load(engine, TrtOptions()) as runner:
        with pytest.raises(UserError, match="no profile 2"):
            runner.select_profile(2)
        runner.select_profile(1)
        with pytest.raises(UserError, match="outside optimization profile 1"):
            runner.infer({"input": np.ones((1, 3, 8, 8), np.float32)})
        runner.infer({"input": np.ones((2, 3, 8, 8), np.float32)})
        assert runner._runner.context.active_optimization_profile == 1
        runner.select_profile(None)  # back to the first that holds the shapes
        runner.infer({"input": np.ones((2, 3, 8, 8), np.float32)})
        assert runner._runner.context.active_optimization_profile == 0


def test_every_report_has_memory_and_one_stream_throughput(trtmake):
    """Without validation.streams, metrics.streams still says what one stream does: the timed
    runs' samples/s at the first point."""
    assert trtmake("target=tiny_cnn_fp32", *FAST) == 0, trtmake.last_err
    m = trtmake.report["targets"][0]["metrics"]
    assert m["streams"] == {"1": pytest.approx(m["throughput"])} and m["streams"]["1"] > 0
    assert m["memory"]["engine_file_mb"] > 0
