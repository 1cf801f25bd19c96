"""Rich renderings for people: the verdict panel and the bounds table."""
from __future__ import annotations

from typing import Any

from verifier.result import SAT, TIMEOUT, UNKNOWN, UNSAT, Result

_STYLE = {UNSAT: "bold green", SAT: "bold red", UNKNOWN: "bold yellow", TIMEOUT: "bold yellow"}
_MEANING = {UNSAT: "property holds (verified)", SAT: "counterexample found (falsified)",
            UNKNOWN: "not decided", TIMEOUT: "timed out", "error": "error"}


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.6g}"


def print_result(result: Result) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    style = _STYLE.get(result.verdict, "bold magenta")
    table.add_row("verdict", f"[{style}]{result.verdict}[/] – {_MEANING.get(result.verdict, '')}")
    table.add_row("model", result.model)
    table.add_row("spec", result.spec)
    if result.method:
        table.add_row("decided by", result.method)
    if result.margin is not None:
        table.add_row("margin bound", f"{_fmt(result.margin)}  (> 0 proves the property)")
    if result.bab:
        table.add_row("branch and bound", ", ".join(f"{v} {k}" for k, v in result.bab.items()))
    t = result.times
    table.add_row("time", "  ".join(f"{k} {t[k]:.2f}s" for k in ("load", "attack", "bounds", "bab", "total") if k in t))
    if result.counterexample is not None:
        cex = result.counterexample
        table.add_row("counterexample", f"x = {_vector(cex.x)}")
        table.add_row("", f"y = {_vector(cex.y)} (onnxruntime)")
    if result.message:
        table.add_row("note", result.message)
    Console().print(Panel(table, title="verifier", expand=False))


def _vector(v: tuple[float, ...], limit: int = 8) -> str:
    shown = ", ".join(f"{x:.6g}" for x in v[:limit])
    return f"[{shown}{', …' if len(v) > limit else ''}] ({len(v)} values)"


def print_bounds(report: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for prop in report:
        table = Table(title=f"property {prop['property']} – {prop['method']}")
        for col in ("row", "clause", "lower", "upper"):
            table.add_column(col, justify="right")
        for i, (lo, hi) in enumerate(zip(prop["objective_lower"], prop["objective_upper"])):
            table.add_row(f"C·y+d [{i}]", str(prop["objective_clause"][i]), _fmt(lo), _fmt(hi))
        for j, (lo, hi) in enumerate(zip(prop["output_lower"], prop["output_upper"])):
            table.add_row(f"Y_{j}", "", _fmt(lo), _fmt(hi))
        console.print(table)
