"""precision.dialect: the TensorRT QDQ graph built and judged on the onnxruntime backend."""

import onnx
import pytest

from trtmake.precision.qdq_check import check_tensorrt_dialect


def _precision_graph(trtmake) -> onnx.ModelProto:
    t = trtmake.report["targets"][0]
    key = {s["name"]: s["key"] for s in t["stages"]}["precision"]
    record = next(p for p in trtmake.cache_files() if p.name == f"{key}.json")
    import json

    digest = json.loads(record.read_text())["outputs"]["onnx"]["digest"]
    obj = next(p for p in trtmake.cache_files() if p.name == digest)
    return onnx.load(str(obj))


def test_tensorrt_dialect_on_the_onnxruntime_backend(trtmake):
    assert trtmake("target=tiny_cnn_int8", "backend=onnxruntime", "precision.dialect=tensorrt",
                   "backend.onnxruntime.graph_optimization_level=basic") == 0
    t = trtmake.report["targets"][0]
    assert t["backend"] == "onnxruntime" and t["precision"]["dialect"] == "tensorrt"
    assert t["precision"]["nodes"]["Gemm"]["float"] == 1  # the TensorRT placement: classifier in float
    assert check_tensorrt_dialect(_precision_graph(trtmake)) == []
    assert t["metrics"]["cosine_similarity"] > 0.99


def test_auto_is_the_backends_dialect_and_shares_the_key_with_naming_it(trtmake):
    assert trtmake("target=tiny_cnn_int8", "backend=onnxruntime") == 0
    assert trtmake.report["targets"][0]["precision"]["dialect"] == "onnxruntime"
    assert trtmake("target=tiny_cnn_int8", "backend=onnxruntime", "precision.dialect=onnxruntime") == 0
    assert trtmake.statuses()["precision"] == "cached"


def test_quantize_gemm_is_part_of_the_tensorrt_key_only(trtmake):
    assert trtmake("target=tiny_cnn_int8", "backend=onnxruntime", "precision.dialect=tensorrt") == 0
    assert trtmake("target=tiny_cnn_int8", "backend=onnxruntime", "precision.dialect=tensorrt",
                   "precision.quantize_gemm=true") == 0
    assert trtmake.statuses()["precision"] == "built"
    assert trtmake.report["targets"][0]["precision"]["nodes"]["Gemm"]["quantized"] == 1
    assert trtmake("target=tiny_cnn_int8", "backend=onnxruntime") == 0
    assert trtmake("target=tiny_cnn_int8", "backend=onnxruntime", "precision.quantize_gemm=true") == 0
    assert trtmake.statuses()["precision"] == "cached"


def test_an_unknown_dialect_is_one_line_exit_2(trtmake):
    assert trtmake("target=tiny_cnn_int8", "precision.dialect=tensorrt8") == 2
    err = trtmake.last_err.strip()
    assert len(err.splitlines()) == 1 and "precision.dialect" in err and "auto" in err


def test_the_precision_stage_reports_progress_per_tensor_of_the_entropy_search(trtmake, monkeypatch):
    from trtmake import cli
    from trtmake.progress import RichProgress

    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(cli, "show_progress", lambda: True)  # the progress display, as on a terminal
    monkeypatch.setattr(RichProgress, "stage_progress",
                        lambda self, target, stage, done, total: calls.append((stage, done, total)))
    assert trtmake("target=tiny_cnn_int8", "calibrator=entropy") == 0
    precision = [(done, total) for stage, done, total in calls if stage == "precision"]
    assert precision and precision[-1][0] == precision[-1][1] > 1  # one step per calibrated tensor
    assert [done for done, _ in precision] == list(range(1, precision[-1][1] + 1))


def test_onnxruntime_dialect_weights_follow_the_cpu(monkeypatch):
    """Signed int8 weights saturate onnxruntime's u8s8 kernels on x86-64 without VNNI: there the
    onnxruntime dialect writes uint8 weights (auto); the precision key holds the choice."""
    import platform

    from trtmake.backends import onnxruntime as ort_backend
    from trtmake.errors import UserError

    backend = ort_backend.OnnxruntimeBackend()
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(ort_backend, "cpu_isa", lambda: "sse4_2,avx,avx2,fma")
    assert backend.int8_weight_type(backend.parse_options({})) == "uint8"
    monkeypatch.setattr(ort_backend, "cpu_isa", lambda: "avx2,avx512f,avx512_vnni")
    assert backend.int8_weight_type(backend.parse_options({})) == "int8"
    assert backend.int8_weight_type(backend.parse_options({"int8_weights": "uint8"})) == "uint8"
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(ort_backend, "cpu_isa", lambda: "asimd,asimddp")
    assert backend.int8_weight_type(backend.parse_options({"int8_weights": "auto"})) == "int8"
    with pytest.raises(UserError, match="backend.onnxruntime.int8_weights"):
        backend.int8_weight_type(backend.parse_options({"int8_weights": "int4"}))
