"""The end of a build or explain run (single or multirun): its report entries become the JSON
report, JUnit XML, the HTML page (report.html) and the summary table (or the explain listing),
and one exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake import report
from trtmake.commands import explain
from trtmake.errors import UserError
from trtmake.executor import TargetResult
from trtmake.heavy import lazy_import
from trtmake.planner import Request

report_html = lazy_import("trtmake.report_html")


def finish_single(request: Request, results: list[TargetResult], console, error) -> int:
    """The jobs of a single run (none: --cfg, show=...). `error` prints a user error's one line."""
    if not results:
        return 0
    entries = [report.target_entry(r) for r in results]
    if request.explain:
        return explain.finish(entries, console)
    cfg = results[0].target.cfg.get("report") or {}
    if results[0].exit_code == 2:  # user error: one line, no table (a report only if a stage ran)
        if results[0].stages:
            _write(entries, cfg, request.project_root)
        error(results[0].error or "bad input")
        return 2
    return _report(entries, cfg, request.project_root, console)


def finish_multirun(request: Request, sweep: dict[str, Any], console) -> int:
    """`sweep`: what the trtmake sweeper collected (app.Job.sweep)."""
    entries = sweep["entries"]
    if not entries:
        raise UserError("multirun: the sweep expanded to no jobs; check the values or the glob(...) pattern")
    if request.explain:
        return explain.finish(entries, console)
    cfg = {"path": sweep["report_path"], "junit": sweep["junit"], "html": sweep.get("html")}
    return _report(entries, cfg, request.project_root, console)


def _report(entries: list[dict[str, Any]], cfg: dict[str, Any], root: Path, console) -> int:
    """`cfg`: the report slice (path, junit, html)."""
    data, out = _write(entries, cfg, root)
    junit, page = cfg.get("junit"), cfg.get("html")
    report.print_summary(data, console, report_path=out, junit_path=_under(root, junit) if junit else None)
    if page:
        console.print(f"html: {_under(root, page)}", style="dim", soft_wrap=True)
    return exit_code(entries)


def _write(entries: list[dict[str, Any]], cfg: dict[str, Any], root: Path):
    data = report.report_from_entries(entries)
    out = _under(root, cfg.get("path") or "build/report.json")
    report.write_json(data, out)
    if cfg.get("junit"):
        report.write_junit(data, _under(root, cfg["junit"]))
    if cfg.get("html"):
        report_html.write_html(data, _under(root, cfg["html"]))
    return data, out


def exit_code(entries: list[dict[str, Any]]) -> int:
    """0 all ok; 2 when every failure is a user error; else 1 (a build or an assertion failed)."""
    codes = [e["exit_code"] or (0 if e["ok"] else 1) for e in entries]
    failed = [c for c in codes if c]
    if not failed:
        return 0
    return 2 if all(c == 2 for c in failed) else 1


def _under(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p
