"""The JSON report's documented shape, the rich table, JUnit XML."""

import xml.etree.ElementTree as ET


def test_json_report_has_the_documented_shape(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    r = trtmake.report
    assert r["ok"] is True and isinstance(r["targets"], list) and len(r["targets"]) == 1
    t = r["targets"][0]
    for key in ("name", "backend", "stages", "metrics", "assertions"):
        assert key in t
    assert t["name"] == "tiny_cnn_fp32" and t["backend"] == "onnxruntime"
    for s in t["stages"]:
        assert set(s) >= {"name", "status", "key", "seconds"} and s["status"] in ("built", "cached")
        assert len(s["key"]) == 64
    for metric in ("max_abs_error", "mean_abs_error", "cosine_similarity", "top1_agreement",
                   "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "throughput"):
        assert isinstance(t["metrics"][metric], float), metric
    a = t["assertions"][0]
    assert set(a) >= {"metric", "op", "value", "actual", "passed"}
    assert t["model"]["synthetic_weights"] is True and t["synthetic_inputs"] is True
    assert t["overrides"] == ["target=tiny_cnn_fp32"]  # as the README shows; report.path is not one


def test_validated_on_names_the_cpu_not_its_feature_flags(trtmake):
    from pathlib import Path

    assert trtmake("target=tiny_cnn_fp32", "validation.iters=2", "validation.warmup=0") == 0
    t = trtmake.report["targets"][0]
    assert t["overrides"] == ["target=tiny_cnn_fp32", "validation.iters=2", "validation.warmup=0"]
    on = t["validated_on"]
    assert "avx" not in on and "sse" not in on, on
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [l.split(":", 1)[1].strip() for l in cpuinfo.read_text().splitlines() if l.startswith("model name")]
        if names:
            assert on.startswith(names[0])


def test_rich_table_lists_target_metrics_and_verdicts(trtmake):
    assert trtmake("target=tiny_cnn_fp32") == 0
    out = trtmake.last_out
    assert "tiny_cnn_fp32" in out and "p99 ms" in out and "1/1" in out
    for stage in ("source", "precision", "build", "reference", "validate"):
        assert stage in out


def test_junit_has_a_case_per_stage_and_per_assertion(trtmake, tmp_path):
    junit = tmp_path / "junit.xml"
    assert trtmake("target=tiny_cnn_fp32", f"report.junit={junit}", "validation.min_throughput=1e12") == 1
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 5 + 2
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 1 and "throughput" in failures[0].get("name")


def test_summary_table_shows_int8_layers_left_in_float(trtmake):
    assert trtmake("target=tiny_cnn_int8", "calibrator=minmax", "precision.exclude_op_types=[Gemm]",
                   "validation.assertions=[]") == 0
    floats = trtmake.report["targets"][0]["precision"]["float_layers"]
    assert floats >= 1  # the Gemm
    assert f"int8 ({floats} float)" in trtmake.last_out
