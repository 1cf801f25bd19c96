"""Rich tables for people: the accuracies per radius (one column each), seconds per stage, tightness."""
from __future__ import annotations

from typing import Any, Optional

_STAGE_NAMES = {"ibp": "IBP", "crown": "CROWN", "alpha": "α-CROWN", "bab": "BaB"}


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _eps(e: float) -> str:
    """0.0078 (2/255) where the radius is a whole number of 8-bit pixel steps."""
    steps = e * 255
    exact = e > 0 and abs(steps - round(steps)) < 1e-9
    return f"{e:.4g}" + (f" ({round(steps)}/255)" if exact else "")


def summary_table(doc: dict[str, Any]) -> Any:
    from rich.table import Table

    runs = doc["runs"]
    n = runs[0]["n"] if runs else 0
    table = Table(title="verified accuracy", caption=f"{doc['model']} on {doc['data']}: {n} samples, {doc['norm']} "
                  f"ball{', clip ' + ' '.join(f'{c:g}' for c in doc['clip']) if doc['clip'] else ''}")
    table.add_column("eps", style="bold")
    for r in runs:
        table.add_column(_eps(r["eps"]), justify="right")

    def row(label: str, cells: list[str], style: str = "") -> None:
        table.add_row(label, *cells, style=style)

    row("clean accuracy", [_pct(r["clean_accuracy"]) for r in runs])
    if "pgd" in doc["cascade"]:
        row("attack accuracy (PGD)", [_pct(r["attack_accuracy"]) for r in runs])
    for stage in doc["cascade"]:
        if stage != "pgd":
            row(f"verified after {_STAGE_NAMES[stage]}", [_pct(r["verified_after"].get(stage)) for r in runs])
    row("verified accuracy", [_pct(r["verified_accuracy"]) for r in runs], "bold green")
    row("unknown", [_pct(r["unknown"]) for r in runs])
    row("timeout", [_pct(r["timeout"]) for r in runs])
    for stage in ("clean",) + tuple(doc["cascade"]):
        row(f"time {stage} (s)", [f"{r['times'].get(stage, 0.0):.2f}" for r in runs], "dim")
    row("time total (s)", [f"{r['times']['total']:.2f}" for r in runs], "dim")
    if any("tightness" in r for r in runs):
        row("IBP tightness (mean)", [f"{r['tightness']['mean']:.3g}" if r.get("tightness") and
                                     r["tightness"]["mean"] is not None else "–" for r in runs], "cyan")
    return table


def relu_table(run: dict[str, Any]) -> Any:
    from rich.table import Table

    t = run["tightness"]
    table = Table(title=f"ReLU states at eps {_eps(run['eps'])} (fractions of neurons × samples); "
                        f"tightness mean {t['mean']:.4g}, median {t['median']:.4g}")
    for col in ("layer", "neurons", "IBP active", "IBP inactive", "IBP unstable", "CROWN unstable"):
        table.add_column(col, justify="right" if col != "layer" else "left")
    for layer in t["relu_states"]:
        ibp, crown = layer["ibp"], layer["crown"]
        table.add_row(layer["layer"], str(layer["neurons"]), _pct(ibp["active"]), _pct(ibp["inactive"]),
                      _pct(ibp["unstable"]), _pct(crown["unstable"]))
    return table


def print_report(doc: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    console.print(summary_table(doc))
    for run in doc["runs"]:
        if run.get("tightness"):
            console.print(relu_table(run))
    if doc["passed"] is not None:
        verdict = "[bold green]met[/]" if doc["passed"] else "[bold red]not met[/]"
        console.print(f"--min-verified-acc {_pct(doc['min_verified_acc'])}: {verdict}")
