"""The report as one self-contained HTML page: viewable offline, nothing fetched.

Input: the JSON report dict (`trtmake.report.report_from_entries`: {"ok", "trtmake", "created",
"targets": [entry, ...]}). The page holds, with inline CSS and plots as base64 PNG:
- a summary table, one row per target (status, backend, precision, accuracy, latency,
  throughput, assertions passed);
- per target: its assertions, its memory figures when measured (`metrics.memory`:
  {engine_file_mb, weights_mb, activation_mb, total_mb}), samples/s with concurrent executions
  when measured (`metrics.streams`: {"1": samples/s, "2": ...}), and its per-layer precision counts, from the
  first of these present: `layer_info.precisions` (TensorRT: precision -> layers),
  `precision.nodes` (INT8: op type -> {quantized, float, removed}), `layer_info.op_types`
  (onnxruntime: op type -> nodes, all in the engine's precision);
- plots of latency and throughput against batch size and sequence length when the entry holds
  a sweep.

Sweep shape: `entry["metrics"]["sweep"]` is a list of points, one per measured input shape:

    {"batch": int, "seq": int | None, "latency_ms": float, "samples_per_s": float}

`batch` is the batch size, `seq` the sequence length (absent or None for a model without a
sequence axis), `latency_ms` the time of one execution at that shape (e.g. the median),
`samples_per_s` the throughput there (batch * 1000 / latency_ms for one stream; more with
concurrent streams). Plots: both measures against batch, one line per seq; and against seq,
one line per batch when more than one seq was measured. A point lacking a field is left out
and the page says how many were.

matplotlib (the `html` extra) is imported only to draw plots, through its object-oriented API
(no pyplot state).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from trtmake.atomic import write_text_atomic
from trtmake.errors import MissingDependency

SWEEP_FIELDS = ("batch", "latency_ms", "samples_per_s")
INSTALL_HINT = "pip install 'trtmake[html]'"
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td.name, th.name { text-align: left; }
.pass { color: #176317; font-weight: 600; } .fail { color: #a11; font-weight: 600; }
.note { color: #666; font-size: 0.9em; } img { max-width: 100%; }
"""
SUMMARY_COLUMNS = (
    ("cosine", "cosine_similarity", "{:.6f}"),
    ("top-1", "top1_agreement", "{:.3f}"),
    ("retrieval", "retrieval_agreement", "{:.3f}"),
    ("p50 ms", "latency_p50_ms", "{:.2f}"),
    ("p99 ms", "latency_p99_ms", "{:.2f}"),
    ("samples/s", "throughput", "{:.1f}"),
)


def write_html(report: dict[str, Any], path: Path) -> None:
    """Write the page for `report` to `path` (temp file + rename)."""
    path = Path(path)
    write_text_atomic(path, render(report))


def render(report: dict[str, Any]) -> str:
    """The page as a string."""
    entries = report.get("targets") or []
    verdict = _verdict(bool(report.get("ok")))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>trtmake report</title>',
        f"<style>{CSS}</style></head><body>",
        f"<h1>trtmake report {verdict}</h1>",
        f'<p class="note">trtmake {_e(report.get("trtmake", "?"))}, created {_e(report.get("created", "?"))}, '
        f"{len(entries)} target(s)</p>",
        "<h2>Summary</h2>",
        summary_table(entries),
    ]
    for entry in entries:
        parts.append(target_section(entry))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def summary_table(entries: list[dict[str, Any]]) -> str:
    head = ["target", "status", "backend", "precision", *(c[0] for c in SUMMARY_COLUMNS), "assertions"]
    rows = []
    for e in entries:
        m = e.get("metrics") or {}
        asserts = e.get("assertions") or []
        cells = [
            _td(e.get("label") or e.get("name"), name=True),
            f"<td>{_verdict(bool(e.get('ok')))}</td>",
            _td(e.get("backend")),
            _td((e.get("precision") or {}).get("mode")),
            *(_td(_fmt(m.get(key), spec)) for _, key, spec in SUMMARY_COLUMNS),
            _td(f"{sum(bool(a.get('passed')) for a in asserts)}/{len(asserts)}"),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(head, rows, caption="summary")


def target_section(entry: dict[str, Any]) -> str:
    name = entry.get("label") or entry.get("name") or "?"
    parts = [f"<h2>{_e(name)}</h2>"]
    if entry.get("error"):
        parts.append(f'<p class="fail">{_e(entry["error"])}</p>')
    if entry.get("validated_on"):
        parts.append(f'<p class="note">validated on {_e(entry["validated_on"])}</p>')
    asserts = entry.get("assertions") or []
    if asserts:
        rows = [f"<tr>{_td(a.get('metric'), name=True)}{_td(a.get('op'))}{_td(a.get('value'))}"
                f"{_td(_fmt(a.get('actual'), '{:.6g}'))}{_td(a.get('shape', 'opt'))}"
                f"<td>{_verdict(bool(a.get('passed')))}</td></tr>" for a in asserts]
        parts += ["<h3>Assertions</h3>", _table(["metric", "op", "value", "actual", "shape", ""], rows, "assertions")]
    memory = (entry.get("metrics") or {}).get("memory")
    if isinstance(memory, dict) and memory:
        rows = [f"<tr>{_td(k, name=True)}{_td(_fmt(v, '{:.2f}'))}</tr>" for k, v in memory.items()]
        parts += ["<h3>Memory</h3>", _table(["what", "MB"], rows, "memory")]
    streams = (entry.get("metrics") or {}).get("streams")
    if isinstance(streams, dict) and streams:
        rows = [f"<tr>{_td(n, name=True)}{_td(_fmt(v, '{:.1f}'))}</tr>"
                for n, v in sorted(streams.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0)]
        parts += ["<h3>Concurrent executions</h3>", _table(["streams", "samples/s"], rows, "streams")]
    layers = layer_table(entry)
    if layers:
        parts += ["<h3>Layers by precision</h3>", layers]
    sweep = (entry.get("metrics") or {}).get("sweep")
    if sweep:
        parts += ["<h3>Latency and throughput</h3>", sweep_plots(sweep)]
    return "\n".join(parts)


def layer_table(entry: dict[str, Any]) -> str:
    """Per-layer precision counts from the best source the entry holds ('' when none)."""
    info = entry.get("layer_info") or {}
    precision = entry.get("precision") or {}
    if info.get("precisions"):
        rows = [f"<tr>{_td(p, name=True)}{_td(n)}</tr>" for p, n in info["precisions"].items()]
        return _table(["precision", "layers"], rows, "layer precisions")
    if isinstance(precision.get("nodes"), dict) and precision["nodes"]:
        rows = [f"<tr>{_td(op, name=True)}{_td(c.get('quantized', 0))}{_td(c.get('float', 0))}"
                f"{_td(c.get('removed', 0))}</tr>" for op, c in sorted(precision["nodes"].items())]
        return _table(["op type", "int8", "float", "removed"], rows, "layer precisions")
    if info.get("op_types"):
        mode = precision.get("mode", "?")
        rows = [f"<tr>{_td(op, name=True)}{_td(n)}</tr>" for op, n in sorted(info["op_types"].items())]
        return _table(["op type", f"nodes ({_e(mode)} engine)"], rows, "layer precisions")
    return ""


def sweep_points(sweep: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """The well-formed points (every SWEEP_FIELDS a number) and how many were left out."""
    good = [p for p in sweep if isinstance(p, dict) and all(isinstance(p.get(f), (int, float)) for f in SWEEP_FIELDS)]
    return good, len(sweep) - len(good)


def sweep_plots(sweep: list[Any]) -> str:
    points, skipped = sweep_points(sweep)
    parts = []
    if points:
        parts.append(_img(_plot(points, "batch", "seq"), "latency and throughput against batch size"))
        if len({p.get("seq") for p in points} - {None}) > 1:
            parts.append(_img(_plot(points, "seq", "batch"), "latency and throughput against sequence length"))
    if skipped:
        parts.append(f'<p class="note">{skipped} sweep point(s) without batch, latency_ms and samples_per_s '
                     "left out</p>")
    return "\n".join(parts)


def _plot(points: list[dict[str, Any]], x: str, series: str) -> bytes:
    """Two panels (latency, throughput) against `x`, one line per value of `series`; PNG bytes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise MissingDependency(f"plots in the HTML report need matplotlib: {INSTALL_HINT}") from None
    fig = Figure(figsize=(9, 3.4), dpi=96)
    FigureCanvasAgg(fig)
    lat_ax, thr_ax = fig.subplots(1, 2)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for p in points:
        if p.get(x) is not None:
            groups.setdefault(p.get(series), []).append(p)
    for value, group in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        group = sorted(group, key=lambda p: p[x])
        label = f"{series} {value}" if value is not None else None
        lat_ax.plot([p[x] for p in group], [p["latency_ms"] for p in group], marker="o", label=label)
        thr_ax.plot([p[x] for p in group], [p["samples_per_s"] for p in group], marker="o", label=label)
    for ax, ylabel in ((lat_ax, "latency (ms)"), (thr_ax, "samples/s")):
        ax.set_xlabel("batch size" if x == "batch" else "sequence length")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if any(v is not None for v in groups):
            ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(head: list[str], rows: list[str], caption: str) -> str:
    th = "".join(f'<th class="name">{_e(h)}</th>' if i == 0 else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    return (f'<table data-table="{_e(caption)}"><thead><tr>{th}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _td(value: Any, name: bool = False) -> str:
    text = "—" if value is None else str(value)
    return f'<td class="name">{_e(text)}</td>' if name else f"<td>{_e(text)}</td>"


def _fmt(value: Any, spec: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None if value is None else str(value)
    return spec.format(value)


def _verdict(ok: bool) -> str:
    return '<span class="pass">pass</span>' if ok else '<span class="fail">FAIL</span>'


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
