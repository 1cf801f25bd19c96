"""The command line: a thin click layer over `verifier.api`.

Nothing heavy is imported at module level: `verifier --help`, `--version` and argument errors
must not pay for torch (≈2 s) or onnx2torch (≈1.5 s more).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from verifier import __version__

from verifier.commands.common import CONTEXT  # noqa: F401 - re-exported for older imports
from verifier.commands.common import fail as _fail
from verifier.commands.common import guarded as _guarded
from verifier.commands.common import set_threads as _set_threads
from verifier.config import BAB_MODES, DEVICES, METHODS, SEMANTICS
from verifier.runner.settings import PRESETS, preset_engine_options


class _Group(click.Group):
    """Usage errors exit 3 (bad input), not click's 2, which means `unknown` here."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from verifier.commands.common import handle_sigterm, interrupt_exit_code

        handle_sigterm()
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as err:
            err.show()
            sys.exit(3)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort as err:  # click's form of KeyboardInterrupt (and so of SIGTERM) outside `guarded`
            click.echo("Aborted!", err=True)
            cause = err.__cause__ or err.__context__
            sys.exit(interrupt_exit_code(cause) if isinstance(cause, KeyboardInterrupt) else 4)
        except KeyboardInterrupt as err:
            click.echo("Aborted!", err=True)
            sys.exit(interrupt_exit_code(err))
        sys.exit(rv if isinstance(rv, int) else 0)


def _print_name(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--name`, a global option of the VNN-LIB standard's command line: the verifier's name, then exit."""
    if value and not ctx.resilient_parsing:
        from verifier.standard import NAME

        click.echo(NAME)
        ctx.exit()


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="verifier", message="%(version)s")
@click.option("--name", is_flag=True, expose_value=False, is_eager=True, callback=_print_name,
              help="Show the name and exit.")
def main() -> None:
    """Sound neural-network verification of ONNX models against VNN-LIB specs."""


def entry() -> None:
    """The process entry point (`verifier`, `python cli.py`): `main`, allowed to end `verify` fast.

    Once `verify` has written its answer, tearing the interpreter down (torch's modules and thread pools)
    takes 0.3-0.5 s of a 2-3 s call; `verify` may skip it (`_finish`). Only here: under click's test
    runner or inside another program the process is not ours to end."""
    main(obj={FAST_EXIT: True})


FAST_EXIT = "fast_exit"


def _finish(code: int) -> None:
    """Exit with `code`; where `entry` allows it, without the interpreter's teardown (`os._exit`, after
    flushing stdout and stderr). `verify` opens no pools, threads or temporary files that outlive it:
    every file it writes is closed (and renamed into place) before this."""
    root = click.get_current_context().find_root().obj
    if isinstance(root, dict) and root.get(FAST_EXIT):
        import os

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can reach it anyway
                pass
        os._exit(code)
    sys.exit(code)


def _common(fn: Callable[..., Any], spec_required: bool = True) -> Callable[..., Any]:
    fn = click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                      help="Where bounds run; auto picks CUDA when available.")(fn)
    fn = click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                      help="CPU threads for torch (1 is fastest for small networks).")(fn)
    fn = click.option("--no-check", is_flag=True, help="Skip the onnxruntime equivalence check at load.")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of a panel.")(fn)
    fn = click.argument("spec", type=click.Path(dir_okay=False), required=spec_required)(fn)
    fn = click.argument("model", type=click.Path(dir_okay=False))(fn)
    return fn


def _common_spec_optional(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`verify` also has the VNN-LIB standard's form `verify QUERY --network NAME=NET.onnx`, without SPEC."""
    return _common(fn, spec_required=False)


@main.command(context_settings=CONTEXT, short_help="Verify a VNN-LIB spec on an ONNX model: unsat / sat / unknown.")
@_common_spec_optional
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="Seconds for the whole call, loading included.")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="Bound method; auto runs IBP, then CROWN, then alpha-CROWN until one proves the spec.")
@click.option("--bab", type=click.Choice(BAB_MODES), default="auto", show_default=True,
              help="Branch and bound on what the bounds leave open; auto: input split for few inputs, else ReLU split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the attack and branch and bound.")
@click.option("--preset", type=click.Choice(tuple(PRESETS)), default="balanced", show_default=True,
              help="Named settings; flags given explicitly win. fast: CROWN bounds and the attack, no branch and "
                   "bound; balanced: the defaults; complete: twice the default timeout.")
@click.option("--results-file", type=click.Path(dir_okay=False), help="Write a VNN-COMP result file here.")
@click.option("--network", "networks", multiple=True, metavar="NAME=NET.onnx",
              help="Standard form: the ONNX file of the query's network NAME.")
@click.option("--strict-element-types", "strict_types", is_flag=True,
              help="Standard form: refuse float16/32/64 declarations (proofs are for real semantics).")
@click.option("--float-as-real", is_flag=True, hidden=True, help="No-op: float declarations are accepted as real.")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only the verdict word; no live progress panel (shown on a terminal after 1 s otherwise).")
@click.option("--certificate", type=click.Path(dir_okay=False),
              help="On unsat, write a certificate here (check it with `verifier check-cert`).")
@click.option("--check-certificate", is_flag=True, help="Also check the certificate with the independent checker.")
@click.option("--semantics", type=click.Choice(SEMANTICS), default="real", show_default=True,
              help="What an unsat holds for: real (the real-valued network) or float32 (also the network "
                   "evaluated in IEEE float32, in any summation order).")
def verify(model: str, spec: str | None, timeout: float, method: str, device: str, threads: int, no_check: bool,
           as_json: bool, bab: str, seed: int, preset: str, results_file: str | None, networks: tuple[str, ...],
           strict_types: bool, float_as_real: bool, quiet: bool, certificate: str | None = None,
           check_certificate: bool = False, semantics: str = "real") -> None:
    """Verify one VNN-LIB spec on one ONNX model: unsat (holds) / sat (counterexample) / unknown.

    Also the VNN-LIB standard form `verify QUERY --network NAME=NET.onnx [--timeout S]`: the first stdout
    line is sat / unsat / unknown / timed-out, after sat the assignment; everything else goes to stderr.
    """
    from verifier.standard import is_standard_form

    ctx = click.get_current_context()
    given = {name for name in ("timeout", "method", "bab")
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    engine = preset_engine_options(preset, {"timeout": timeout, "method": method, "bab": bab}, given)
    standard = _guarded(lambda: is_standard_form(model, spec, networks))
    if standard and as_json:
        _fail(3, "--json does not apply to `verify QUERY --network ...`, which prints the VNN-LIB standard's answer")
    if results_file:
        from verifier.errors import check_output_path

        _guarded(lambda: check_output_path(results_file, "--results-file"))

    def run() -> Any:
        from verifier.api import verify as api_verify
        from verifier.report.live import live_progress
        from verifier.standard import verify_standard

        _set_threads(threads)
        options = dict(engine, device=device, seed=seed, check_model=not no_check, semantics=semantics)
        if certificate:
            options.update(certificate=certificate, check_certificate=check_certificate)
        if standard:
            return verify_standard(model, networks, strict_types=strict_types and not float_as_real, **options)
        with live_progress(enabled=not (quiet or as_json)) as progress:
            return api_verify(model, spec, progress=progress, **options), None

    result, standard_text = _guarded(run)
    if result.verdict == "error" and not as_json:
        _fail(result.exit_code, result.message)
    if results_file and result.verdict != "error":
        from verifier.report.vnncomp import write_result_file

        _guarded(lambda: write_result_file(results_file, result))
    if standard_text is not None:
        click.echo(standard_text, nl=False)
    elif as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    elif quiet:
        click.echo(result.verdict)
    else:
        from verifier.report.panel import print_result

        print_result(result)
    if result.certificate is not None and not (quiet or as_json or standard_text is not None):
        cert = result.certificate
        if cert.get("path"):
            checked = f", checked: {cert.get('check_message')}" if cert.get("checked") else ""
            click.echo(f"certificate: {cert['path']} ({cert['leaves']} leaves, {cert['bytes']} bytes{checked})", err=True)
        else:
            click.echo(f"no certificate: {cert.get('message', '')}", err=True)
    _finish(result.exit_code)


@main.command(context_settings=CONTEXT, short_help="Print bounds of the spec's objectives and of the outputs.")
@_common
@click.option("--method", type=click.Choice(METHODS[1:]), default="crown", show_default=True,
              help="Bound method.")
def bounds(model: str, spec: str, method: str, device: str, threads: int, no_check: bool, as_json: bool) -> None:
    """Print lower/upper bounds of the spec's objectives (C·y + d) and of the outputs."""
    def run() -> Any:
        from verifier.api import compute_bounds

        _set_threads(threads)
        return compute_bounds(model, spec, method=method, device=device, check_model=not no_check)

    report = _guarded(run)
    if as_json:
        click.echo(json.dumps({"schema": "verifier.bounds/1", "model": model, "spec": spec, "properties": report},
                              indent=2))
    else:
        from verifier.report.panel import print_bounds

        print_bounds(report)


# Commands that live in their own modules; registered once `main` exists (they import only click here).
from verifier.certify.command import certify as _certify_command  # noqa: E402
from verifier.commands.check_cert import check_cert as _check_cert_command  # noqa: E402
from verifier.commands.check_model import check_model as _check_model_command  # noqa: E402
from verifier.commands.supports import supports as _supports_command  # noqa: E402
from verifier.runner.command import run as _run_command  # noqa: E402

for _command in (_run_command, _check_model_command, _supports_command, _certify_command, _check_cert_command):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
