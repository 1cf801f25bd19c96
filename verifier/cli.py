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

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _fail(code: int, message: str) -> None:
    """One line on stderr and a defined exit code: no traceback for the user."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _guarded(fn: Callable[[], Any]) -> Any:
    """Run `fn`, turning our errors into exit 3/4 with one line, and bugs into exit 4 with one line."""
    from verifier.errors import InputError, VerifierError
    from verifier.result import EXIT_BAD_INPUT, EXIT_INTERNAL

    try:
        return fn()
    except InputError as err:
        _fail(EXIT_BAD_INPUT, str(err))
    except VerifierError as err:
        _fail(EXIT_INTERNAL, str(err))
    except KeyboardInterrupt:
        _fail(EXIT_INTERNAL, "interrupted")
    except Exception as err:  # noqa: BLE001 - a bug: still one line, the type says where to look
        _fail(EXIT_INTERNAL, f"internal error: {type(err).__name__}: {err} (set VERIFIER_DEBUG=1 for a traceback)")


def _set_threads(threads: int) -> None:
    """Small matmuls run fastest on few threads and degrade badly when cores are shared: choose explicitly."""
    import torch

    torch.set_num_threads(max(1, threads))


class _Group(click.Group):
    """Usage errors exit 3 (bad input), not click's 2, which means `unknown` here."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as err:
            err.show()
            sys.exit(3)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(4)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="verifier")
def main() -> None:
    """Sound neural-network verification of ONNX models against VNN-LIB specs."""


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                      help="Where bounds run; auto picks CUDA when available.")(fn)
    fn = click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                      help="CPU threads for torch (1 is fastest for small networks).")(fn)
    fn = click.option("--no-check", is_flag=True, help="Skip the onnxruntime equivalence check at load.")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of a panel.")(fn)
    fn = click.argument("spec", type=click.Path(dir_okay=False))(fn)
    fn = click.argument("model", type=click.Path(dir_okay=False))(fn)
    return fn


@main.command(context_settings=CONTEXT, short_help="Verify a VNN-LIB spec on an ONNX model: unsat / sat / unknown.")
@_common
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="Seconds for the whole call, loading included.")
@click.option("--method", type=click.Choice(["auto", "ibp", "crown", "alpha"]), default="auto", show_default=True,
              help="Bound method; auto runs IBP, then CROWN, then alpha-CROWN until one proves the spec.")
@click.option("--bab", type=click.Choice(["auto", "input", "relu", "none"]), default="auto", show_default=True,
              help="Branch and bound on what the bounds leave open; auto: input split for few inputs, else ReLU split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the attack and branch and bound.")
@click.option("--results-file", type=click.Path(dir_okay=False), help="Write a VNN-COMP result file here.")
def verify(model: str, spec: str, timeout: float, method: str, device: str, threads: int, no_check: bool,
           as_json: bool, bab: str, seed: int, results_file: str | None) -> None:
    """Verify one VNN-LIB spec on one ONNX model: unsat (holds) / sat (counterexample) / unknown."""
    def run() -> Any:
        from verifier.api import verify as api_verify

        _set_threads(threads)
        return api_verify(model, spec, timeout=timeout, method=method, device=device, seed=seed, bab=bab,
                          check_model=not no_check)

    result = _guarded(run)
    if result.verdict == "error" and not as_json:
        _fail(result.exit_code, result.message)
    if results_file and result.verdict != "error":
        from verifier.report.vnncomp import write_result_file

        _guarded(lambda: write_result_file(results_file, result))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        from verifier.report.panel import print_result

        print_result(result)
    sys.exit(result.exit_code)


@main.command(context_settings=CONTEXT, short_help="Print bounds of the spec's objectives and of the outputs.")
@_common
@click.option("--method", type=click.Choice(["ibp", "crown", "alpha"]), default="crown", show_default=True,
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


if __name__ == "__main__":  # pragma: no cover
    main()
