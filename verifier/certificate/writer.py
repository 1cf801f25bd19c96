"""Assemble and write the certificate of an `unsat` (`verify --certificate FILE`), optionally check it.

Per (property, clause) root: the split tree of the input-split search that proved it, or, for a
clause the bounds closed before any branching, a tree of one leaf (the property's box) with the
stage that closed it.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from verifier.certificate.format import ALPHA, CROWN, IBP, Certificate, RootProof, sha256_file, write_certificate


@dataclass(frozen=True)
class TreeProof:
    """A root proved by input splitting: the search's recorder and its rows' weights (r, k)."""

    recorder: Any  # verifier.certificate.recorder.SplitRecorder
    mix: np.ndarray


@dataclass(frozen=True)
class StageProof:
    """A root closed by the bounds on the whole box: ibp / crown / alpha."""

    method: str
    rows: int


def build_certificate(model_path: str, spec_path: str, proofs: dict[tuple[int, int], Any],
                      relu_widths: tuple[int, ...], version: str) -> Certificate:
    roots = []
    for (p, c), proof in sorted(proofs.items()):
        if isinstance(proof, TreeProof):
            dim, point, kind, alpha_leaf, alphas = proof.recorder.tree(len(relu_widths))
            roots.append(RootProof(p, c, dim, point, kind, np.asarray(proof.mix, np.float64), alpha_leaf, tuple(alphas)))
        else:
            code = {"ibp": IBP, "crown": CROWN}.get(proof.method, ALPHA)
            roots.append(RootProof(p, c, np.array([-1]), np.zeros(1), np.array([code]), np.eye(proof.rows)))
    return Certificate(sha256_file(model_path), sha256_file(spec_path), tuple(roots), relu_widths,
                       {"verifier": version})


def write_and_check(path: str, model_path: str, spec_path: str, proofs: dict[tuple[int, int], Any],
                    relu_widths: tuple[int, ...], version: str, check: bool) -> dict[str, Any]:
    """Write the certificate; the result JSON's "certificate" object (checked by the independent
    checker when `check`)."""
    start = time.monotonic()
    cert = build_certificate(model_path, spec_path, proofs, relu_widths, version)
    write_certificate(path, cert)
    report: dict[str, Any] = {"path": path, "leaves": cert.leaves, "bytes": os.path.getsize(path),
                              "write_seconds": round(time.monotonic() - start, 4), "checked": False}
    if check:
        from verifier.certificate.checker import check_certificate
        from verifier.certificate.network import UnsupportedModel

        try:
            outcome = check_certificate(model_path, spec_path, path)
        except UnsupportedModel as err:  # the verifier reads more ops than the checker
            report.update(checked=False, valid=None, check_message=f"not checked: {err}")
            return report
        report.update(checked=True, valid=outcome.valid, check_message=outcome.message,
                      check_seconds=round(outcome.seconds, 4))
    return report


def no_certificate(reason: str, path: Optional[str]) -> dict[str, Any]:
    return {"path": None, "leaves": 0, "checked": False, "message": reason, "requested": path}
