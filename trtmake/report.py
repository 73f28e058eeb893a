"""Reporters: the JSON report (machine-readable), JUnit XML for CI, and the rich summary table.

Reporters print: this module, summary.py, progress.py and the commands (trtmake/commands/);
the executor and the stages never do. Schema (documented in the README):
{"ok": bool, "targets": [{"name", "backend", "stages": [{"name", "status", "key", "seconds"}],
  (status: built | cached | fetched | failed | skipped; "remote": what the remote cache served),
  "metrics": {...}, "assertions": [{"metric", "op", "value", "actual", "passed"}], ...}]}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from trtmake import __version__, summary
from trtmake.atomic import write_text_atomic
from trtmake.executor import TargetResult
from trtmake.heavy import lazy_import
from trtmake.normalize import PER_TENSOR
from trtmake.summary import STATUS_STYLE

ET = lazy_import("xml.etree.ElementTree")  # JUnit XML, only when asked for
markup = lazy_import("rich.markup")
rich_table = lazy_import("rich.table")


def target_entry(r: TargetResult) -> dict[str, Any]:
    data = r.data
    validate = data.get("validate", {})
    metrics_at = validate.get("metrics_at", {})
    # the first profile's opt (`opt`, or `short/opt` with several profiles), else the first point
    main = next((p for p in metrics_at if p.rpartition("/")[2] == "opt"), next(iter(metrics_at), None))
    primary = dict(metrics_at.get(main) or {})
    others = {p: m for p, m in metrics_at.items() if p != main}
    if others:
        primary["at"] = others
    if len(metrics_at) > 1 and "/" in (main or ""):
        primary["point"] = main
    for measure in ("memory", "streams", "sweep"):  # once per engine, not per point
        if measure in validate:
            primary[measure] = validate[measure]
    build = data.get("build", {})
    entry: dict[str, Any] = {
        "name": r.target.name,
        "label": r.target.label,
        # what selects this target again: target=NAME, then the overrides that change what is built
        "overrides": [f"target={r.target.name}", *r.target.overrides],
        "backend": r.backend,
        "backend_reason": r.backend_reason,
        "ok": r.ok,
        "exit_code": r.exit_code,
        "error": r.error,
        "stages": [{"name": s.name, "status": s.status, "key": s.key, "seconds": round(s.seconds, 4),
                    **({"built_seconds": round(s.built_seconds, 4)} if s.built_seconds is not None else {}),
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
    if r.remote is not None:  # {url (password redacted), mode, hits, misses, bytes_in, bytes_out}
        entry["remote"] = r.remote
    return entry


def source_notes(source: dict[str, Any], mode: str) -> list[str]:
    """Warnings from the source stage's normalization that change what this build does."""
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


def report_from_entries(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of one run or of a whole multirun (one entry per job, same schema)."""
    return {"ok": all(e["ok"] for e in entries) and bool(entries), "trtmake": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "targets": entries}


def write_json(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(report, indent=2, default=str) + "\n")


def write_junit(report: dict[str, Any], path: Path) -> None:
    """One testsuite per target (per multirun job): a case per stage and one per assertion."""
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
    write_text_atomic(path, ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


def print_summary(report: dict[str, Any], console, report_path: Path | None = None,
                  junit_path: Path | None = None) -> None:
    targets = [{**t, "label": markup.escape(t["label"])} for t in report["targets"]]
    if len(targets) == 1:
        stages = rich_table.Table(title=f"{targets[0]['label']} — stages")
        for col in ("stage", "status", "seconds", "key"):
            stages.add_column(col, justify="right" if col == "seconds" else "left")
        for s in targets[0]["stages"]:
            status = f"[{STATUS_STYLE.get(s['status'], '')}]{s['status']}[/]"
            if s.get("built_seconds") is not None:  # seconds is this run's; the build's own time is a note
                status += f" [dim](built in {s['built_seconds']:.2f} s)[/]"
            stages.add_row(s["name"], status, f"{s['seconds']:.2f}", (s["key"] or "")[:12])
        console.print(stages)
    summary.print_summary(targets, console, _precision_summary)
    for t in targets:
        for a in t["assertions"]:
            if not a["passed"]:
                console.print(f"[bold red]FAILED[/] {t['label']}: {a['metric']} {a['op']} {a['value']} "
                              f"(actual {summary.fixed(a['actual'], 6)}, at {a.get('shape', 'opt')})"
                              + (f": {markup.escape(a['reason'])}" if a.get("reason") else ""))
        for w in t["warnings"]:
            console.print(f"[yellow]warning[/] {t['label']}: {markup.escape(w)}")
        if t["error"]:
            console.print(f"[bold red]error[/] {t['label']}: {markup.escape(t['error'])}")
    if report_path is not None:
        console.print(f"report: {report_path}", style="dim", soft_wrap=True)
    if junit_path is not None:
        console.print(f"junit: {junit_path}", style="dim", soft_wrap=True)


def _precision_summary(precision: dict[str, Any]) -> str:
    """`int8 (3 float)`: the mode, and for int8 how many weighted layers stayed in float."""
    mode = str(precision.get("mode") or "—")
    if precision.get("float_layers") is not None:
        return f"{mode} ({precision['float_layers']} float)"
    return mode


def print_status(rows: list[dict[str, Any]], console, seconds: float | None = None,
                 as_json: bool = False) -> None:
    """`trtmake status`: one row per target, the first changed key component when stale."""
    if as_json:
        console.print_json(json.dumps({"targets": rows, "seconds": round(seconds or 0.0, 3)}))
        return
    style = {"up to date": "cyan", "stale": "yellow", "error": "bold red"}
    verdict = {True: "[green]passing[/]", False: "[bold red]failing[/]", None: "[dim]—[/]"}
    table = rich_table.Table(title="trtmake status")
    for col in ("target", "state", "assertions", "stage", "first change / failed assertion"):
        table.add_column(col, overflow="fold")
    said: dict[str, str] = {}  # an error shared by many rows (TensorRT missing) is said once
    for r in rows:
        why = r["why"]
        if r["state"] == "error" and why in said:
            why = f"the same as for {said[why]}"
        elif r["state"] == "error":
            said[why] = r["target"]
        table.add_row(markup.escape(r["target"]), f"[{style.get(r['state'], '')}]{r['state']}[/]",
                      verdict[r.get("passing")], r["stage"] or "", markup.escape(why))
    console.print(table)
    counts = {s: sum(r["state"] == s for r in rows) for s in ("up to date", "stale", "error")}
    counts["failing"] = sum(r.get("passing") is False for r in rows)
    took = f" in {seconds:.2f} s" if seconds is not None else ""
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" ({len(rows)} targets{took})",
                  style="dim")


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def print_cache_removal(summary: dict[str, Any], console) -> None:
    """`trtmake gc` and `trtmake clean`: what was (or would be) removed, and the bytes."""
    verb = "would remove" if summary.get("dry_run") else "removed"
    table = rich_table.Table(title=f"trtmake {markup.escape(summary['command'])}")
    for col in ("", "count", "bytes"):
        table.add_column(col, justify="left" if not col else "right")
    kinds = {"records": "records", "objects": "objects", "pointers": "pointers", "tmp": "tmp",
             "plans": "plans", "runs": "run folders (runs/, sweeps/)"}
    for kind, label in kinds.items():
        if kind in summary["removed"]:
            count, size = summary["removed"][kind]
            table.add_row(f"{verb}: {label}", str(count), human_bytes(size))
    dry = summary.get("dry_run")
    table.add_row("[bold]would free[/]" if dry else "[bold]freed[/]", "", f"[bold]{human_bytes(summary['freed'])}[/]")
    table.add_row("cache size before", "", human_bytes(summary["before"]))
    table.add_row("cache size after" + (" (if run)" if dry else ""), "", human_bytes(summary["after"]))
    if "budget" in summary:
        table.add_row("budget", "", human_bytes(summary["budget"]))
    if summary.get("protected"):
        table.add_row("kept for last runs (targets/*.json)", str(summary["protected"][0]),
                      human_bytes(summary["protected"][1]))
    console.print(table)
    console.print(f"cache: {markup.escape(str(summary['cache']))}", style="dim", soft_wrap=True)
    for note in summary.get("notes", []):
        console.print(f"[yellow]note[/] {markup.escape(note)}")


def print_remote(verb: str, result: dict[str, Any], console, as_json: bool = False) -> None:
    """`trtmake cache push|pull|stats`: what moved (or what the remote holds), then any warnings."""
    if as_json:
        console.print_json(json.dumps(result))
        return
    if verb == "stats":
        r, here = result["remote"], result["local"]
        console.print(f"remote {markup.escape(result['url'])} ({result['mode']}): {r['records']} records, "
                      f"{r['objects']} objects, {human_bytes(r['object_bytes'])}")
        console.print(f"local: {here['records']} records, {here['objects']} objects, "
                      f"{human_bytes(here['object_bytes'])}; only here: {result['only_local']}, "
                      f"only on the remote: {result['only_remote']}")
    else:
        moved = "pushed" if verb == "push" else "fetched"
        size = human_bytes(result.get("bytes_out" if verb == "push" else "bytes_in", 0))
        console.print(f"{moved}: {len(result[moved])} records ({size}), already there: {len(result['present'])}, "
                      f"missing: {len(result['missing'])}")
    for w in result.get("warnings", []):
        console.print(f"[yellow]warning[/] {markup.escape(w)}")


def print_timing_merge(result: dict[str, Any], console) -> None:
    """`trtmake merge-timing-cache`: which produced caches went into the pinned file."""
    if not result.get("merged") and not result.get("rejected") and result.get("nothing"):
        console.print(f"nothing to merge: {markup.escape(result['nothing'])}")
        return
    for path in result.get("merged", []):
        console.print(f"[green]merged[/]   {markup.escape(str(path))}")
    for path in result.get("rejected", []):
        console.print(f"[yellow]rejected[/] {markup.escape(str(path))} (another device or TensorRT release)")
    state = "updated" if result.get("changed") else "unchanged"
    console.print(f"{markup.escape(str(result['pinned']))}: {state}, {human_bytes(result.get('bytes', 0))}"
                  + (f", sha256 {result['sha256_after'][:12]}" if result.get("sha256_after") else ""))
