"""`verifier check-model NET.onnx [--spec SPEC]`: can we verify this model, and does our graph match onnxruntime?"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click

from verifier.commands.common import CONTEXT, fail as _fail, guarded as _guarded, set_threads as _set_threads


@click.command("check-model", context_settings=CONTEXT,
               short_help="ONNX ops, shapes, parameters and agreement with onnxruntime.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--spec", type=click.Path(dir_okay=False), help="Sample in this spec's first input box.")
@click.option("--samples", type=click.IntRange(min=1), default=16, show_default=True,
              help="Random points compared with onnxruntime.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random points.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document (schema verifier.check-model/1).")
def check_model(model: str, spec: Optional[str], samples: int, seed: int, as_json: bool) -> None:
    """Op table (supported or not), inputs/outputs, parameter count, and the max abs difference between
    our translated graph and onnxruntime on random inputs (uniform in --spec's first box, else standard
    normal). Exit 0 when the model can be verified, 3 otherwise (every unsupported op listed at once)."""
    def run() -> Any:
        from verifier.model.inspect import inspect_model

        _set_threads(1)
        return inspect_model(model, spec, samples=samples, seed=seed)

    report = _guarded(run)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from verifier.report.model_table import print_model_report

        print_model_report(report)
    if report.problem is not None:
        _fail(3, report.problem)
    sys.exit(0)
