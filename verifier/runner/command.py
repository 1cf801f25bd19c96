"""The `verifier run` click command: parse flags, then hand over to settings, instances, batch, gate, reports.

Only click and the light runner modules are imported here; torch comes with the first instance.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import click

from verifier.runner.settings import BAB_MODES, DEVICES, EXECUTORS, METHODS, PRESETS, SEMANTICS

_GATE_HELP = """Exit code, the CI gate (the highest code that applies wins):

\b
  0  the gate passes
  1  an instance is sat (falsified) and sat is in --fail-on (the default)
  2  an instance is unknown or timeout and that verdict is in --fail-on,
     or fewer than --min-verified of all instances are unsat
  3  bad input: arguments, config file, instances.csv, an existing --results file without --resume,
     or --resume with another timeout than recorded without --force; or an instance is error because
     of bad input (an unreadable spec, an unsupported model) and error is in --fail-on (the default)
  4  an instance is error from an internal error, or the run itself hit one
  130/143  interrupted by Ctrl-C / SIGTERM: the summary covers the instances that finished
"""


def _help(text: str) -> str:
    return text + "\n\n" + _GATE_HELP


@click.command("run", short_help="Batch runs over an instances.csv or many specs; CI gate.",
               help=_help("""Verify every instance of a VNN-COMP instances.csv (rows onnx,vnnlib,timeout, paths
relative to the CSV), or one model against many specs (files, folders, glob patterns), with a progress bar, a
summary table, resumable results and a CI gate.

\b
  verifier run benchmarks/acasxu/instances.csv --results acas.jsonl
  verifier run --model net.onnx 'specs/*.vnnlib' --timeout 60 --junit report.xml --min-verified 0.95

Settings come from the command line > --config FILE.toml > [tool.verifier] in the nearest pyproject.toml >
--preset (fast: bounds and attack only; balanced: the defaults; complete: timeouts doubled) > defaults.
Each instance's timeout covers the whole instance, loading included."""))
@click.argument("inputs", nargs=-1, metavar="INSTANCES.csv | SPECS…")
@click.option("--model", type=click.Path(dir_okay=False), help="Verify this ONNX model against the SPECS given.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per instance, loading included; overrides the CSV's.  [default: the CSV's, or 300]")
@click.option("--timeout-scale", type=click.FloatRange(min=0, min_open=True),
              help="Multiply every instance's timeout.  [default: 1]")
@click.option("--preset", type=click.Choice(list(PRESETS)), help="Named settings.  [default: balanced]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file of settings (keys as the long flags, with underscores).")
@click.option("--method", type=click.Choice(METHODS), help="Bound method, as in verify.  [default: auto]")
@click.option("--bab", type=click.Choice(BAB_MODES), help="Branch and bound, as in verify.  [default: auto]")
@click.option("--device", type=click.Choice(DEVICES), help="Where bounds run.  [default: auto]")
@click.option("--semantics", type=click.Choice(SEMANTICS), help="What an unsat holds for, as in verify.  "
              "[default: real]")
@click.option("--threads", type=click.IntRange(min=1), help="torch threads per worker.  [default: 1]")
@click.option("--no-check", is_flag=True, help="Skip the onnxruntime equivalence check.")
@click.option("--seed", type=int, help="Seed for the attack and branch and bound.  [default: 0]")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Instances run in parallel (worker processes, "
              "or Ray actors).  [default: 1]")
@click.option("--executor", type=click.Choice(EXECUTORS), help="local (this machine) or ray (pip install "
              "'verifier[ray]').  [default: local]")
@click.option("--ray-address", help="Ray cluster to connect to (default: start a local one).")
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path),
              help="Append one record per instance here (JSONL; CSV for a .csv suffix), fsynced as it ends.")
@click.option("--resume", is_flag=True, help="Skip the instances already recorded in --results (those whose model "
              "or spec changed since run again).")
@click.option("--force", is_flag=True, help="With --resume: keep records made with another timeout than this run's.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write per-instance VNN-COMP result files (and counterexample files for sat) here.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JUnit XML report: one testcase per instance.")
@click.option("--junit-strict", is_flag=True, help="Report unknown and timeout as failures, not skipped.")
@click.option("--fail-on", help="Verdicts that fail the gate, comma-separated (sat,unknown,timeout,error or "
              "none).  [default: sat,error]")
@click.option("--min-verified", type=click.FloatRange(0, 1), help="Fail the gate (exit 2) when fewer than this "
              "fraction of all instances are unsat.")
@click.option("--certificates", type=click.Path(file_okay=False),
              help="Write each unsat's certificate into this folder (see verify --certificate).")
@click.option("--check-certificates", is_flag=True, help="Check each certificate with the independent checker.")
@click.option("--json", "as_json", is_flag=True, help="Print a verifier.run/1 summary document instead of the table.")
@click.option("--quiet", "-q", is_flag=True, help="Plain log lines instead of a progress bar; a one-line summary.")
def run(inputs: tuple[str, ...], model: Optional[str], config_file: Optional[Path], no_check: bool,
        results: Optional[Path], resume: bool, force: bool, results_dir: Optional[Path], junit: Optional[Path],
        junit_strict: bool, as_json: bool, quiet: bool, **values: Any) -> None:
    """See the help text above; the exit code is the gate's (`verifier.runner.gate`)."""
    from verifier.commands.common import fail as _fail, guarded as _guarded
    from verifier.result import EXIT_BAD_INPUT

    if model is None and len(inputs) != 1:
        raise click.UsageError("give one INSTANCES.csv, or --model NET.onnx and one or more SPECS")
    if model is not None and not inputs:
        raise click.UsageError("--model NET.onnx needs SPECS: spec files, folders or glob patterns")
    if resume and results is None:
        raise click.UsageError("--resume needs --results FILE")
    cli = {k: v for k, v in values.items() if v is not None}
    if no_check:
        cli["check_model"] = False
    if junit_strict:
        cli["junit_strict"] = True
    if not cli.get("check_certificates"):
        cli.pop("check_certificates", None)

    from verifier.runner.settings import resolve

    settings = _guarded(lambda: resolve(cli, config_file))
    if settings.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            _fail(EXIT_BAD_INPUT, "--executor ray needs Ray: pip install 'verifier[ray]'")
    _guarded(lambda: _check_outputs(results, results_dir, junit))
    plan = _guarded(lambda: _plan(inputs, model, settings))

    from verifier.runner.batch import Outputs, open_results, run_batch
    from verifier.runner.progress import make_reporter

    outputs = Outputs(results, resume, results_dir)
    results_file, previous = _guarded(lambda: open_results(outputs))
    if previous:
        from verifier.runner.batch import reconcile

        kept, stale = _guarded(lambda: reconcile(plan, previous, force, str(results)))
        if stale:
            click.echo(f"note: {stale} recorded instance(s) changed since (model or spec): running them again",
                       err=True)
            _guarded(lambda: results_file.rewrite(kept))
        previous = kept
    batch = _guarded(lambda: run_batch(plan, settings, outputs, make_reporter(quiet), results_file, previous))
    _report(batch, settings, results, junit, as_json, quiet, len(plan))


def _check_outputs(results: Optional[Path], results_dir: Optional[Path], junit: Optional[Path]) -> None:
    """Output paths are checked (their folders made) before any instance runs: exit 3 at once, not at the end."""
    from verifier.errors import check_output_path

    for path, option in ((results, "--results"), (junit, "--junit")):
        if path is not None:
            check_output_path(path, option, make_folder=True)
    if results_dir is not None:
        check_output_path(results_dir, "--results-dir", folder=True)


def _plan(inputs: tuple[str, ...], model: Optional[str], settings: Any) -> list[Any]:
    """The instances, fingerprinted, with their effective timeouts; a bad device fails here, before any run."""
    from verifier.runner.instances import fingerprint, model_instances, read_instances_csv

    if settings.executor == "local" and settings.device == "cuda":
        from verifier.api import resolve_device

        resolve_device("cuda")
    plan = model_instances(model, inputs) if model is not None else read_instances_csv(Path(inputs[0]))
    return fingerprint(plan, settings.timeout, settings.timeout_scale)


def _report(batch: Any, settings: Any, results: Optional[Path], junit: Optional[Path], as_json: bool,
            quiet: bool, planned: int) -> None:
    from verifier.commands.common import guarded as _guarded
    from verifier.runner import junit as junit_report
    from verifier.runner.gate import error_exit, evaluate
    from verifier.runner.summary import build, counts_of, one_line, print_table

    gate = evaluate(counts_of(batch.records), settings.fail_on, settings.min_verified, error_exit(batch.records))
    doc = build(batch.records, batch.resumed, batch.elapsed, gate, settings, str(results) if results else None)
    if batch.interrupted:
        doc["interrupted"] = {"exit_code": batch.interrupted, "planned": planned}
    if junit is not None:
        _guarded(lambda: junit_report.write(junit, batch.records, settings.junit_strict))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    elif quiet:
        click.echo(one_line(doc))
    else:
        from rich.console import Console

        print_table(doc, Console())
    if batch.interrupted:  # the summary above covers what finished; the exit code says the run was stopped
        signal = "SIGTERM" if batch.interrupted == 143 else "SIGINT"
        click.echo(f"error: interrupted ({signal}) after {len(batch.records)} of {planned} instances", err=True)
        sys.exit(batch.interrupted)
    sys.exit(gate.exit_code)
