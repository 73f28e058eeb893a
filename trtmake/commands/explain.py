"""`trtmake explain ...`: why each stage of each target is up to date or stale, printed from the
report entries (report.target_entry) of an explain run; nothing is built or written."""

from __future__ import annotations

from typing import Any, Iterable

from trtmake.summary import STATUS_STYLE


def finish(entries: list[dict[str, Any]], console) -> int:
    """Print the entries; the exit code is the worst entry's (2: a user error)."""
    print_explain(entries, console)
    return max(e["exit_code"] for e in entries)


def print_explain(entries: Iterable[dict[str, Any]], console) -> None:
    """Report entries whose stages carry their reasons."""
    from rich.markup import escape

    said: dict[str, str] = {}  # an error shared by many targets (TensorRT missing) is said once
    for e in entries:
        console.print(f"[bold]{escape(e['label'])}[/] ({e['backend'] or 'backend ?'})")
        if e["error"] and e["error"] in said:
            console.print(f"  [bold red]error[/] the same as for {escape(said[e['error']])}")
        elif e["error"]:
            said[e["error"]] = e["label"]
            console.print(f"  [bold red]error[/] {escape(e['error'])}")
        for s in e["stages"]:
            style = STATUS_STYLE.get(s["status"], "")
            console.print(f"  {s['name']:<10} [{style}]{s['status']}[/]")
            for line in s.get("reasons", []):
                console.print(f"      {escape(line)}")
