"""Reporters: the JSON report (machine-readable), JUnit XML for CI, and the rich summary table.

Only this module and progress.py print. Schema (documented in the README):
{"ok": bool, "targets": [{"name", "backend", "stages": [{"name", "status", "key", "seconds"}],
  "metrics": {...}, "assertions": [{"metric", "op", "value", "actual", "passed"}], ...}]}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable

from trtmake import __version__
from trtmake.atomic import write_text_atomic
from trtmake.executor import TargetResult

STATUS_STYLE = {"built": "green", "cached": "cyan", "failed": "bold red", "skipped": "dim",
                "up to date": "cyan", "stale": "yellow"}


def target_entry(r: TargetResult) -> dict[str, Any]:
    data = r.data
    validate = data.get("validate", {})
    metrics_at = validate.get("metrics_at", {})
    primary = dict(metrics_at.get("opt") or next(iter(metrics_at.values()), {}))
    others = {p: m for p, m in metrics_at.items() if p != "opt"}
    if others:
        primary["at"] = others
    build = data.get("build", {})
    entry: dict[str, Any] = {
        "name": r.target.name,
        "label": r.target.label,
        "overrides": list(r.target.overrides),
        "backend": r.backend,
        "backend_reason": r.backend_reason,
        "ok": r.ok,
        "exit_code": r.exit_code,
        "error": r.error,
        "stages": [{"name": s.name, "status": s.status, "key": s.key, "seconds": round(s.seconds, 4),
                    **({"reasons": s.reasons} if s.reasons else {})} for s in r.stages],
        "metrics": primary,
        "assertions": r.assertions,
        "model": model_entry(r.target["model"]),
        "precision": {"mode": r.target["precision"]["mode"], **data.get("precision", {})},
        "layer_info": build.get("layer_info", {}),
        "synthetic_inputs": validate.get("synthetic_inputs"),
        "validated_on": validate.get("device"),
        "warnings": r.warnings + source_notes(data.get("source", {}), r.target["precision"]["mode"]),
    }
    if data.get("source", {}).get("normalized"):
        entry["source"] = {"normalized": data["source"]["normalized"]}
    for name in ("engine", "graph"):
        if name in data:
            entry[name] = data[name]
    if "calibrate" in data:
        entry["calibration"] = data["calibrate"]
    if "traceback" in data:
        entry["traceback"] = data["traceback"]["text"]
    return entry


def source_notes(source: dict[str, Any], mode: str) -> list[str]:
    """Warnings from the source stage's normalization that change what this build does."""
    from trtmake.normalize import PER_TENSOR

    skipped = (source.get("normalized") or {}).get("skipped", [])
    return [note for note in skipped if mode == "int8" and PER_TENSOR in note]


def model_entry(model: dict[str, Any]) -> dict[str, Any]:
    """The model as the report names it: a user's file by its stem and path; `synthetic_weights`
    only where trtmake made the graph (a generator or an export)."""
    entry: dict[str, Any] = {"name": model.get("name")}
    if model.get("path"):
        entry["path"] = model["path"]
    if model.get("generator") or model.get("export"):
        entry["synthetic_weights"] = bool(model.get("synthetic_weights"))
    return entry


def report_dict(results: Iterable[TargetResult]) -> dict[str, Any]:
    return report_from_entries([target_entry(r) for r in results])


def report_from_entries(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of one run or of a whole multirun (one entry per job, same schema)."""
    return {"ok": all(e["ok"] for e in entries) and bool(entries), "trtmake": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "targets": entries}


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(report, indent=2, default=str) + "\n")


def write_junit(report: dict[str, Any], path: Path) -> None:
    """One testsuite per target (per multirun job): a case per stage and one per assertion."""
    from xml.etree import ElementTree as ET

    suites = ET.Element("testsuites", name="trtmake")
    for t in report["targets"]:
        cases = []
        for s in t["stages"]:
            case = ET.Element("testcase", classname=f"trtmake.{t['label']}", name=f"stage {s['name']}",
                              time=str(s["seconds"]))
            if s["status"] == "failed":
                ET.SubElement(case, "failure", message=t["error"] or "failed").text = t["error"] or ""
            elif s["status"] == "skipped":
                ET.SubElement(case, "skipped", message="an earlier stage failed")
            cases.append(case)
        for a in t["assertions"]:
            name = f"assert {a['metric']} {a['op']} {a['value']} @{a.get('shape', 'opt')}"
            case = ET.Element("testcase", classname=f"trtmake.{t['label']}", name=name, time="0")
            if not a["passed"]:
                ET.SubElement(case, "failure", message=f"actual {a['actual']}").text = json.dumps(a)
            cases.append(case)
        suite = ET.SubElement(suites, "testsuite", name=t["label"], tests=str(len(cases)),
                              failures=str(sum(1 for c in cases if c.find("failure") is not None)),
                              skipped=str(sum(1 for c in cases if c.find("skipped") is not None)))
        suite.extend(cases)
    for count in ("tests", "failures", "skipped"):
        suites.set(count, str(sum(int(s.get(count)) for s in suites)))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _stage_summary(stages: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for s in stages:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    return ", ".join(f"[{STATUS_STYLE.get(k, '')}]{n} {k}[/]" for k, n in counts.items())


def print_summary(report: dict[str, Any], console=None, report_path: Path | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    targets = [{**t, "label": escape(t["label"])} for t in report["targets"]]
    if len(targets) == 1:
        stages = Table(title=f"{targets[0]['label']} — stages")
        for col in ("stage", "status", "seconds", "key"):
            stages.add_column(col, justify="right" if col == "seconds" else "left")
        for s in targets[0]["stages"]:
            stages.add_row(s["name"], f"[{STATUS_STYLE.get(s['status'], '')}]{s['status']}[/]",
                           f"{s['seconds']:.2f}", (s["key"] or "")[:12])
        console.print(stages)
    table = Table(title="trtmake summary", show_lines=len(targets) > 1)
    for col in ("target", "backend", "precision", "stages"):
        table.add_column(col)
    for col in ("cosine", "top1", "max abs", "p50 ms", "p99 ms", "samples/s", "assertions"):
        table.add_column(col, justify="right")
    for t in targets:
        m = t["metrics"]
        passed = sum(a["passed"] for a in t["assertions"])
        total = len(t["assertions"])
        verdict = (("[green]" if passed == total else "[bold red]") + f"{passed}/{total}[/]") if total else "—"
        if t["error"]:
            verdict = "[bold red]error[/]"
        table.add_row(t["label"], t["backend"] or "—", _precision_summary(t.get("precision") or {}),
                      _stage_summary(t["stages"]),
                      _fmt(m.get("cosine_similarity"), 6), _fmt(m.get("top1_agreement")),
                      _fmt(m.get("max_abs_error"), 3), _fmt(m.get("latency_p50_ms"), 3),
                      _fmt(m.get("latency_p99_ms"), 3), _fmt(m.get("throughput"), 4), verdict)
    console.print(table)
    for t in targets:
        for a in t["assertions"]:
            if not a["passed"]:
                console.print(f"[bold red]FAILED[/] {t['label']}: {a['metric']} {a['op']} {a['value']} "
                              f"(actual {_fmt(a['actual'], 6)}, at {a.get('shape', 'opt')})"
                              + (f": {a['reason']}" if a.get("reason") else ""))
        for w in t["warnings"]:
            console.print(f"[yellow]warning[/] {t['label']}: {w}")
        if t["error"]:
            console.print(f"[bold red]error[/] {t['label']}: {t['error']}")
    if report_path is not None:
        console.print(f"report: {report_path}", style="dim")


def _precision_summary(precision: dict[str, Any]) -> str:
    """`int8 (3 float)`: the mode, and for int8 how many weighted layers stayed in float."""
    mode = str(precision.get("mode") or "—")
    if precision.get("float_layers") is not None:
        return f"{mode} ({precision['float_layers']} float)"
    return mode


def print_explain(entries: Iterable[dict[str, Any]], console=None) -> None:
    """Report entries (report.target_entry) whose stages carry their reasons."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    for e in entries:
        console.print(f"[bold]{escape(e['label'])}[/] ({e['backend'] or 'backend ?'})")
        if e["error"]:
            console.print(f"  [bold red]error[/] {escape(e['error'])}")
        for s in e["stages"]:
            style = STATUS_STYLE.get(s["status"], "")
            console.print(f"  {s['name']:<10} [{style}]{s['status']}[/]")
            for line in s.get("reasons", []):
                console.print(f"      {escape(line)}")


def print_status(rows: list[dict[str, Any]], console=None, seconds: float | None = None,
                 as_json: bool = False) -> None:
    """`trtmake status`: one row per target, the first changed key component when stale."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    if as_json:
        console.print_json(json.dumps({"targets": rows, "seconds": round(seconds or 0.0, 3)}))
        return
    style = {"up to date": "cyan", "stale": "yellow", "error": "bold red"}
    table = Table(title="trtmake status")
    for col in ("target", "state", "stage", "first change"):
        table.add_column(col)
    for r in rows:
        table.add_row(escape(r["target"]), f"[{style.get(r['state'], '')}]{r['state']}[/]", r["stage"] or "",
                      escape(r["why"]))
    console.print(table)
    counts = {s: sum(r["state"] == s for r in rows) for s in ("up to date", "stale", "error")}
    took = f" in {seconds:.2f} s" if seconds is not None else ""
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" ({len(rows)} targets{took})",
                  style="dim")


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def print_cache_removal(summary: dict[str, Any], console=None) -> None:
    """`trtmake gc` and `trtmake clean`: what was (or would be) removed, and the bytes."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    verb = "would remove" if summary.get("dry_run") else "removed"
    table = Table(title=f"trtmake {escape(summary['command'])}")
    for col in ("", "count", "bytes"):
        table.add_column(col, justify="left" if not col else "right")
    for kind in ("records", "objects", "pointers", "tmp", "plans"):
        if kind in summary["removed"]:
            count, size = summary["removed"][kind]
            table.add_row(f"{verb}: {kind}", str(count), human_bytes(size))
    table.add_row("[bold]freed[/]", "", f"[bold]{human_bytes(summary['freed'])}[/]")
    table.add_row("cache size before", "", human_bytes(summary["before"]))
    table.add_row("cache size after", "", human_bytes(summary["after"]))
    if "budget" in summary:
        table.add_row("budget", "", human_bytes(summary["budget"]))
    if summary.get("protected"):
        table.add_row("kept for last runs (targets/*.json)", str(summary["protected"][0]),
                      human_bytes(summary["protected"][1]))
    console.print(table)
    console.print(f"cache: {escape(str(summary['cache']))}", style="dim", soft_wrap=True)
    for note in summary.get("notes", []):
        console.print(f"[yellow]note[/] {escape(note)}")


def print_timing_merge(result: dict[str, Any], console=None) -> None:
    """`trtmake merge-timing-cache`: which produced caches went into the pinned file."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    if not result.get("merged") and not result.get("rejected") and result.get("nothing"):
        console.print(f"nothing to merge: {escape(result['nothing'])}")
        return
    for path in result.get("merged", []):
        console.print(f"[green]merged[/]   {escape(str(path))}")
    for path in result.get("rejected", []):
        console.print(f"[yellow]rejected[/] {escape(str(path))} (another device or TensorRT release)")
    state = "updated" if result.get("changed") else "unchanged"
    console.print(f"{escape(str(result['pinned']))}: {state}, {human_bytes(result.get('bytes', 0))}"
                  + (f", sha256 {result['sha256_after'][:12]}" if result.get("sha256_after") else ""))
