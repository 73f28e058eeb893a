"""The summary table printed after a run: fits the console's width, numbers in fixed notation.

Columns have a priority; when the table would be wider than the console, the lowest-priority
columns are left out (the report has every figure) and a dim line says which. The target label
wraps rather than being cut, so override labels stay whole in a narrow terminal or a pipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

STATUS_STYLE = {"built": "green", "cached": "cyan", "fetched": "blue", "failed": "bold red", "skipped": "dim",
                "up to date": "cyan", "stale": "yellow", "unknown": "magenta"}
STATUS_ORDER = ("built", "cached", "fetched", "failed", "skipped", "up to date", "stale", "unknown")
LABEL_MIN = 18  # the target column wraps down to this width before other columns are dropped


def fixed(value: Any, decimals: int) -> str:
    """A number in fixed notation with `decimals` places; a small nonzero value keeps two
    significant digits (8e-06 -> 0.0000080), so nothing reads as 0 that is not."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value != value:  # NaN
        return "nan"
    if isinstance(value, int):
        return str(value)
    if value and abs(value) < 10 ** -decimals * 10:
        decimals = min(12, max(decimals, 1 - math.floor(math.log10(abs(value)))))
    return f"{value:.{decimals}f}"


def latency(value: Any) -> str:
    return fixed(value, 1 if isinstance(value, float) and value >= 100 else 2)


def throughput(value: Any) -> str:
    return fixed(value, 0 if isinstance(value, float) and value >= 100 else 1)


def stage_counts(stages: list[dict[str, Any]]) -> str:
    """`1 built, 3 fetched, 1 cached`: always in the same order, whatever order the stages ran in."""
    counts = {k: sum(s["status"] == k for s in stages) for k in STATUS_ORDER}
    counts.update({s["status"]: counts.get(s["status"], 0) for s in stages if s["status"] not in counts})
    return ", ".join(f"[{STATUS_STYLE.get(k, '')}]{n} {k}[/]" for k, n in counts.items() if n)


@dataclass
class Column:
    header: str
    priority: int  # 0 is never dropped; higher numbers go first when space runs out
    cell: Callable[[dict[str, Any]], str]
    justify: str = "right"


def _verdict(t: dict[str, Any]) -> str:
    if t["error"]:
        return "[bold red]error[/]"
    total = len(t["assertions"])
    if not total:
        return "—"
    passed = sum(a["passed"] for a in t["assertions"])
    return ("[green]" if passed == total else "[bold red]") + f"{passed}/{total}[/]"


def _metric(name: str, fmt: Callable[[Any], str]) -> Callable[[dict[str, Any]], str]:
    return lambda t: fmt(t["metrics"].get(name))


def columns(precision_summary: Callable[[dict[str, Any]], str]) -> list[Column]:
    return [
        Column("target", 0, lambda t: t["label"], "left"),
        Column("stages", 0, lambda t: stage_counts(t["stages"]), "left"),
        Column("assert", 0, _verdict),
        Column("cosine", 1, _metric("cosine_similarity", lambda v: fixed(v, 6))),
        Column("top1", 2, _metric("top1_agreement", lambda v: fixed(v, 3))),
        Column("p50 ms", 3, _metric("latency_p50_ms", latency)),
        Column("precision", 4, lambda t: precision_summary(t.get("precision") or {}), "left"),
        Column("backend", 5, lambda t: t["backend"] or "—", "left"),
        Column("p99 ms", 6, _metric("latency_p99_ms", latency)),
        Column("max abs", 7, _metric("max_abs_error", lambda v: fixed(v, 4))),
        Column("samples/s", 8, _metric("throughput", throughput)),
    ]


def _plain_width(text: str) -> int:
    from rich.text import Text

    return max((len(line) for line in Text.from_markup(text).plain.splitlines()), default=0)


def fit(cols: list[Column], rows: list[list[str]], width: int) -> list[int]:
    """Indices of the columns kept: every column when the table fits, else the highest-priority
    ones that do (the label may wrap down to LABEL_MIN, the stage counts one count a line)."""
    natural = [max([_plain_width(c.header)] + [_plain_width(r[i]) for r in rows]) for i, c in enumerate(cols)]
    least = list(natural)
    least[0] = min(natural[0], LABEL_MIN)
    least[1] = max([len(cols[1].header)] + [_plain_width(part) + 1 for r in rows for part in r[1].split(", ")])

    def table_width(keep: list[int], widths: list[int]) -> int:
        return sum(widths[i] + 2 for i in keep) + len(keep) + 1  # padding 1 each side, borders

    keep = list(range(len(cols)))
    for drop in sorted(keep, key=lambda i: -cols[i].priority):
        if table_width(keep, least) <= width or cols[drop].priority == 0:
            break
        keep.remove(drop)
    return keep


def print_summary(targets: list[dict[str, Any]], console, precision_summary: Callable[[dict[str, Any]], str]) -> None:
    from rich.table import Table

    cols = columns(precision_summary)
    rows = [[c.cell(t) for c in cols] for t in targets]
    keep = fit(cols, rows, console.width)
    table = Table(title="trtmake summary", show_lines=len(targets) > 1)
    for i in keep:
        c = cols[i]
        table.add_column(c.header, justify=c.justify, overflow="fold", no_wrap=i > 1)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    console.print(table)
    dropped = [cols[i].header for i in range(len(cols)) if i not in keep]
    if dropped:
        console.print(f"not shown at {console.width} columns: {', '.join(dropped)} (a wider terminal shows them; "
                      "every figure is in the report)", style="dim")
