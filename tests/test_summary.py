"""The summary table: fits 80 columns (columns dropped by priority, labels wrapped, never cut),
shows every column when the terminal is wide, numbers in fixed notation, stage counts in a fixed
order, cached stages' seconds are this run's."""

from __future__ import annotations

import copy
import io
import re

from rich.console import Console

from trtmake import report, summary

LONG = "validation.max_latency_p99_ms=5000 backend.onnxruntime.graph_optimization_level=extended"


def _render(data: dict, width: int) -> str:
    out = io.StringIO()
    report.print_summary(data, Console(width=width, file=out, color_system=None))
    return out.getvalue()


def _two_targets(trtmake) -> dict:
    assert trtmake("target=tiny_cnn_fp32", "validation.iters=3", *LONG.split()) == 0
    data = trtmake.report
    second = copy.deepcopy(data["targets"][0])
    second["metrics"].update(latency_p50_ms=24321.456, throughput=24320.5, max_abs_error=8e-06)
    data["targets"].append(second)
    return data


def test_summary_fits_80_columns_and_shows_everything_at_200(trtmake):
    data = _two_targets(trtmake)
    narrow = _render(data, 80)
    assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
    assert "…" not in narrow and not re.search(r"\de[+-]\d", narrow), narrow
    cells = "".join(re.findall(r"^│ (.*?) *│", narrow, re.M))  # the target column, wrapped lines joined
    assert LONG.replace(" ", "") in cells.replace(" ", ""), narrow  # the override label is whole
    for header in ("target", "stages", "assert", "cosine"):
        assert header in narrow
    assert "not shown at 80 columns" in narrow and "samples/s" in narrow.split("not shown")[1]
    wide = _render(data, 200)
    for header in ("backend", "precision", "p99 ms", "max abs", "samples/s", "top1", "p50 ms"):
        assert header in wide, wide
    assert "not shown" not in wide
    assert "24321.5" in wide and "24320" in wide and "0.0000080" in wide
    assert not re.search(r"\de[+-]\d", wide)


def test_numbers_are_fixed_notation_with_sensible_precision():
    assert summary.fixed(0.9999934, 6) == "0.999993"
    assert summary.fixed(8e-06, 4) == "0.0000080"
    assert summary.fixed(0.0, 4) == "0.0000"
    assert summary.latency(24321.456) == "24321.5" and summary.latency(2.4567) == "2.46"
    assert summary.throughput(24320.5) == "24320" and summary.throughput(49.04) == "49.0"
    assert summary.fixed(None, 3) == "—"


def test_stage_counts_keep_one_order():
    built_first = [{"status": "built"}, {"status": "cached"}, {"status": "cached"}]
    assert summary.stage_counts(built_first) == summary.stage_counts(built_first[::-1])
    assert re.sub(r"\[[^]]*\]", "", summary.stage_counts(built_first[::-1])) == "1 built, 2 cached"


def test_cached_stage_seconds_are_this_runs_and_the_build_time_is_kept_apart(trtmake):
    args = ("target=tiny_cnn_fp32", "validation.iters=3000")  # a validate stage that takes a while
    assert trtmake(*args) == 0
    built = {s["name"]: s["seconds"] for s in trtmake.report["targets"][0]["stages"]}
    assert trtmake(*args) == 0
    stages = {s["name"]: s for s in trtmake.report["targets"][0]["stages"]}
    assert {s["status"] for s in stages.values()} == {"cached"}
    for name, s in stages.items():
        assert s["built_seconds"] == round(built[name], 4)
    assert stages["validate"]["seconds"] < stages["validate"]["built_seconds"] / 2
    assert "built in" in trtmake.last_out
