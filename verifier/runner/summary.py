"""The end of a batch run: a summary table, or (`--json`) a document with schema `verifier.run/1`.

    {
      "schema": "verifier.run/1", "version": "0.1.0",
      "instances": 186,                 // in the plan
      "resumed": 0,                     // of which taken from the results file (--resume)
      "counts": {"unsat": 136, "sat": 46, "unknown": 0, "timeout": 4, "error": 0},
      "verdicts": {                     // every verdict, each a list of its instances in plan order
        "sat": [{"index": 3, "onnx": "onnx/a.onnx", "vnnlib": "vnnlib/p.vnnlib", "time": 0.1, "wall": 0.1,
                 "message": ""}], "unsat": [...], "unknown": [], "timeout": [...], "error": []},
      "gate": {"passed": false, "exit_code": 1, "fail_on": ["sat", "error"], "min_verified": null,
               "verified_fraction": 0.73, "failing": {"sat": 46}, "reasons": ["46 sat"]},
      "time": {"total": 140.2,          // seconds this invocation ran (the batch loop)
               "engine": 130.1,         // sum of per-instance engine time (model load, spec, verify)
               "wall": 131.0,           // sum of per-instance wall time
               "overhead": {"total": 0.9, "mean": 0.005, "max": 0.03}},  // per instance: wall - engine
      "results": "acas.jsonl",          // the results file, or null
      "config": {...},                  // the effective settings (as in every record)
      "interrupted": {"exit_code": 130, "planned": 186}  // only when Ctrl-C (130) or SIGTERM (143) stopped the
    }                                   // run: then the counts cover the instances that finished

Fields are only ever added, never renamed, within one schema version.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Optional, Sequence

from verifier import __version__
from verifier.result import ERROR, SAT, VERDICTS
from verifier.runner.gate import GateOutcome
from verifier.runner.progress import LABELS
from verifier.runner.settings import RunSettings

SCHEMA = "verifier.run/1"


def counts_of(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    tally = Counter(r["verdict"] for r in records)
    return {v: tally.get(v, 0) for v in VERDICTS}


def overhead(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The runner's own cost per instance: wall minus engine time (never negative from rounding)."""
    per = [max(0.0, float(r["wall"]) - float(r["time"])) for r in records]
    return {"total": sum(per), "mean": sum(per) / len(per) if per else 0.0, "max": max(per, default=0.0)}


def build(records: Sequence[Mapping[str, Any]], resumed: int, elapsed: float, gate: GateOutcome,
          settings: RunSettings, results: Optional[str]) -> dict[str, Any]:
    def entry(r: Mapping[str, Any]) -> dict[str, Any]:
        return {k: r.get(k) for k in ("index", "onnx", "vnnlib", "time", "wall", "message")}

    return {
        "schema": SCHEMA, "version": __version__,
        "instances": len(records), "resumed": resumed,
        "counts": counts_of(records),
        "verdicts": {v: [entry(r) for r in records if r["verdict"] == v] for v in VERDICTS},
        "gate": gate.to_json(settings.fail_on, settings.min_verified),
        "time": {"total": elapsed, "engine": sum(float(r["time"]) for r in records),
                 "wall": sum(float(r["wall"]) for r in records), "overhead": overhead(records)},
        "results": results,
        "config": settings.to_dict(),
    }


def one_line(doc: Mapping[str, Any]) -> str:
    """The `--quiet` summary: counts, overhead and the gate on one line."""
    counts = " ".join(f"{v}={doc['counts'][v]}" for v in VERDICTS)
    ov = doc["time"]["overhead"]
    gate = doc["gate"]
    verdict = "passed" if gate["passed"] else f"FAILED ({'; '.join(gate['reasons'])}), exit {gate['exit_code']}"
    return (f"instances={doc['instances']} {counts} time={doc['time']['total']:.1f}s "
            f"overhead mean={ov['mean'] * 1000:.1f}ms max={ov['max'] * 1000:.1f}ms gate {verdict}")


def print_table(doc: Mapping[str, Any], console: Any, max_listed: int = 10) -> None:
    """Counts per verdict, times, the gate, and the first few falsified or failed instances."""
    from rich.table import Table

    total = max(1, doc["instances"])
    table = Table(title=f"verifier run: {doc['instances']} instances"
                  + (f" ({doc['resumed']} resumed)" if doc["resumed"] else ""))
    table.add_column("verdict")
    table.add_column("instances", justify="right")
    table.add_column("share", justify="right")
    table.add_column("engine s", justify="right")
    for verdict, label, style in LABELS:
        rows = doc["verdicts"][verdict]
        seconds = sum(float(r["time"]) for r in rows)
        name = f"[{style}]{label}[/]" + (f" ({verdict})" if label != verdict else "")
        table.add_row(name, str(len(rows)), f"{100 * len(rows) / total:.1f}%",
                      f"{seconds:.2f}")
    console.print(table)
    t, ov = doc["time"], doc["time"]["overhead"]
    console.print(f"time {t['total']:.1f} s, engine {t['engine']:.1f} s; runner overhead per instance: "
                  f"mean {ov['mean'] * 1000:.1f} ms, max {ov['max'] * 1000:.1f} ms", highlight=False)
    notable = [(v, r) for v in (SAT, ERROR) for r in doc["verdicts"][v]]
    for verdict, r in notable[:max_listed]:
        console.print(f"  {verdict:<5} #{r['index'] + 1} {r['onnx']} {r['vnnlib']}"  # 1-based, as the log lines
                      + (f": {r['message']}" if r["message"] else ""), markup=False, highlight=False, soft_wrap=True)
    if len(notable) > max_listed:
        console.print(f"  … and {len(notable) - max_listed} more", highlight=False)
    gate = doc["gate"]
    if gate["passed"]:
        console.print(f"[green]gate passed[/] (verified {gate['verified_fraction']:.1%})")
    else:
        console.print(f"[red]gate failed[/]: {'; '.join(gate['reasons'])} (exit {gate['exit_code']})",
                      highlight=False)
