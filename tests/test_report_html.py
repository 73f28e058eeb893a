"""The HTML report: one offline page with the summary table, layer precisions and sweep plots."""

import base64
from html.parser import HTMLParser

import pytest

from trtmake import report_html
from trtmake.report import report_from_entries

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Tables (as lists of rows of cell texts, by data-table), images, and outside references."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.external: list[str] = []
        self._table = self._row = self._cell = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("data-table", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def entry(name="minilm_fp32", ok=True, **metrics):
    return {
        "name": name, "label": name, "backend": "onnxruntime", "ok": ok, "error": None,
        "precision": {"mode": "fp32"},
        "metrics": {"cosine_similarity": 0.9999991, "top1_agreement": 1.0, "latency_p50_ms": 12.5,
                    "latency_p99_ms": 20.0, "throughput": 320.0, **metrics},
        "assertions": [{"metric": "cosine_similarity", "op": ">=", "value": 0.999, "actual": 0.9999991,
                        "passed": True, "shape": "opt"},
                       {"metric": "latency_p99_ms", "op": "<=", "value": 10.0, "actual": 20.0,
                        "passed": False, "shape": "opt"}],
        "layer_info": {"op_types": {"MatMul": 48, "LayerNormalization": 13}},
        "validated_on": "a CPU",
    }


SWEEP = [{"batch": b, "seq": s, "latency_ms": 1.0 + b * s / 64, "samples_per_s": b * 1000 / (1.0 + b * s / 64)}
         for b in (1, 4, 8) for s in (16, 64)]


def test_summary_table_has_a_row_per_target_with_its_figures(tmp_path):
    report = report_from_entries([entry(), entry("minilm_int8", ok=False, cosine_similarity=0.991)])
    out = tmp_path / "r" / "report.html"
    report_html.write_html(report, out)
    page = Page(out.read_text())
    head, *rows = page.tables["summary"]
    assert head[:4] == ["target", "status", "backend", "precision"]
    assert [r[0] for r in rows] == ["minilm_fp32", "minilm_int8"]
    assert rows[0][1] == "pass" and rows[1][1] == "FAIL"
    assert rows[0][head.index("cosine")] == "0.999999"
    assert rows[1][head.index("cosine")] == "0.991000"
    assert rows[0][head.index("p50 ms")] == "12.50"
    assert rows[0][head.index("retrieval")] == "—"  # not measured
    assert rows[0][head.index("assertions")] == "1/2"
    assert page.external == []  # nothing to fetch: no outside src or href


def test_assertions_and_layer_counts_are_tabled():
    page = Page(report_html.render(report_from_entries([entry()])))
    assertions = page.tables["assertions"]
    assert [r[0] for r in assertions[1:]] == ["cosine_similarity", "latency_p99_ms"]
    assert assertions[2][-1] == "FAIL"
    layers = dict((r[0], r[1]) for r in page.tables["layer precisions"][1:])
    assert layers == {"LayerNormalization": "13", "MatMul": "48"}


def test_layer_precisions_prefer_tensorrt_then_int8_counts():
    trt = entry(layer_info={})
    trt["layer_info"] = {"precisions": {"fp16": 30, "int8": 70}, "op_types": {"X": 1}}
    rows = Page(report_html.render(report_from_entries([trt]))).tables["layer precisions"]
    assert rows[0] == ["precision", "layers"] and rows[1:] == [["fp16", "30"], ["int8", "70"]]
    int8 = entry()
    int8["precision"] = {"mode": "int8", "nodes": {"MatMul": {"quantized": 40, "float": 8, "removed": 0}}}
    rows = Page(report_html.render(report_from_entries([int8]))).tables["layer precisions"]
    assert rows[0] == ["op type", "int8", "float", "removed"] and rows[1] == ["MatMul", "40", "8", "0"]


def test_a_sweep_gives_png_plots_against_batch_and_sequence_length():
    page = Page(report_html.render(report_from_entries([entry(sweep=SWEEP)])))
    assert len(page.images) == 2
    assert {"latency and throughput against batch size",
            "latency and throughput against sequence length"} == {i["alt"] for i in page.images}
    for image in page.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix)
        assert base64.b64decode(image["src"][len(prefix):]).startswith(PNG_MAGIC)


def test_one_sequence_length_plots_only_against_batch_and_bad_points_are_counted():
    sweep = [{"batch": b, "latency_ms": float(b), "samples_per_s": 1000.0} for b in (1, 2, 4)]
    text = report_html.render(report_from_entries([entry(sweep=[*sweep, {"batch": 8}, "junk"])]))
    page = Page(text)
    assert [i["alt"] for i in page.images] == ["latency and throughput against batch size"]
    assert "2 sweep point(s)" in text


def test_no_sweep_no_images_and_memory_is_tabled():
    memory = {"engine_file_mb": 86.2, "weights_mb": 86.0, "activation_mb": 12.25}
    page = Page(report_html.render(report_from_entries([entry(memory=memory)])))
    assert page.images == []
    assert page.tables["memory"][1:] == [["engine_file_mb", "86.20"], ["weights_mb", "86.00"],
                                         ["activation_mb", "12.25"]]


def test_text_from_the_report_is_escaped():
    bad = entry(name="<script>alert(1)</script>")
    bad["error"] = "a & b < c"
    text = report_html.render(report_from_entries([bad]))
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "a &amp; b &lt; c" in text
