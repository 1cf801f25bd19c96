"""The rich rendering of `check-model`: the op table and a summary of the model for people."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from verifier.model.inspect import ModelReport, TensorInfo


def _tensors(tensors: Sequence["TensorInfo"]) -> str:
    return ", ".join(f"{t.name} {t.element_type} [{','.join(map(str, t.shape))}]" for t in tensors) or "–"


def print_model_report(report: "ModelReport") -> None:
    from rich.console import Console
    from rich.table import Table

    ops = Table(title=f"ONNX ops (opset {report.opset})")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    ops.add_column("supported")
    for o in report.ops:
        ops.add_row(o.op, str(o.count), "[green]yes[/]" if o.supported else "[bold red]no[/]")

    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    summary.add_row("model", report.path)
    summary.add_row("inputs", _tensors(report.inputs))
    summary.add_row("outputs", _tensors(report.outputs))
    summary.add_row("parameters", f"{report.parameters:,}")
    c = report.comparison
    if c is not None:
        diff = "–" if c.max_abs_diff is None else f"{c.max_abs_diff:.3g}"
        verdict = "[green]within tolerance[/]" if c.within_tolerance else "[bold red]beyond tolerance[/]"
        summary.add_row("vs onnxruntime", f"max abs diff {diff} ({verdict}; {c.samples} points, {c.distribution}, "
                                          f"seed {c.seed})")
    summary.add_row("verdict", "[bold green]can be verified[/]" if report.problem is None
                    else "[bold red]cannot be verified[/] (reason on stderr)")
    console = Console()
    console.print(ops)
    console.print(summary)
