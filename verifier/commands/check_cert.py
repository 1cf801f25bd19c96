"""`verifier check-cert MODEL SPEC CERT`: the independent checker of unsat certificates.

Imports no torch: it runs `verifier.certificate.checker` (numpy, onnx) on the three files and prints
`valid` (exit 0) or `invalid: leaf N, reason` (exit 1); unreadable or unsupported files exit 3.
"""
from __future__ import annotations

import json
import sys

import click

from verifier.commands.common import CONTEXT, fail


@click.command("check-cert", context_settings=CONTEXT, short_help="Check an unsat certificate independently.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("spec", type=click.Path(dir_okay=False))
@click.argument("certificate", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document (schema verifier.check-cert/1).")
def check_cert(model: str, spec: str, certificate: str, as_json: bool) -> None:
    """Re-prove every leaf of CERTIFICATE (written by `verify --certificate`) in rigorous float64
    interval arithmetic, with the checker's own ONNX reader and bounds (no torch), and check that the
    leaves cover every clause of every property of SPEC: prints `valid` or `invalid: leaf N, reason`."""
    from verifier.certificate.checker import check_certificate
    from verifier.certificate.format import CertificateFileError
    from verifier.certificate.network import UnsupportedModel
    from verifier.errors import InputError

    for path in (model, spec, certificate):
        try:
            open(path, "rb").close()
        except OSError as err:
            fail(3, f"{path}: {err.strerror}")
    try:
        outcome = check_certificate(model, spec, certificate)
    except (UnsupportedModel, CertificateFileError, InputError) as err:
        fail(3, str(err).splitlines()[0] if str(err) else type(err).__name__)
        return
    if as_json:
        click.echo(json.dumps({"schema": "verifier.check-cert/1", "valid": outcome.valid, "message": outcome.message,
                               "leaves": outcome.leaves, "seconds": round(outcome.seconds, 4)}, indent=2))
    else:
        click.echo(outcome.message)
    sys.exit(0 if outcome.valid else 1)
