"""The one place that decides whether a computed margin proves a clause ("does this margin prove?").

A margin m is a lower bound, computed in some dtype, of max_j (C_j·f(x) + d_j) over a region. It proves
the clause when m exceeds
- the semantic error: 0 for the real-valued network (`--semantics real`); for `--semantics float32`,
  E = the largest float32 evaluation error bound of the clause's rows over the region
  (`verifier.bounds.float_error.row_errors`): the float32 network's row is then >= m - E > 0;
- the bound's own rounding: a float32 bound computation (CROWN's forward and backward passes) performs
  the network's arithmetic once more, with magnitudes of the same order (its coefficients are products
  of the same |W|, relaxation slopes <= 1), so its rounding is taken to be at most the same E; a
  float64 computation at most E·2^-29 (u64 / u32). E is a worst-case bound (it adds every rounding at
  its largest); this allowance is derived from it, not proved for the bound code.
The comparison is done in float64 on float64 allowances rounded up (the float32 margin converts to
float64 exactly): it cannot round a margin into a proof.

Margins in float32 that miss by no more than the rounding allowance are "thin": the engines redo them in
float64 (a far smaller allowance) instead of giving them up. Where E is not finite (an op without a
float32 error rule, `float_error.supported`), float32 semantics proves nothing and the rounding
allowance falls back to 1e-5 x the largest magnitude of any node on the region (at least 1e-3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from verifier.bounds.float_error import Box, row_errors
from verifier.model.graph import Graph

Tensor = torch.Tensor

SEMANTICS = ("real", "float32")
FLOAT64_SHARE = 2.0 ** -29  # a float64 bound's rounding, relative to a float32 one's: u64 / u32


@dataclass(frozen=True)
class Allowance:
    """Per region (b,) float64: the semantic error a margin must exceed, and a float32 bound's rounding."""

    semantic: Tensor
    rounding: Tensor

    def index(self, mask: Tensor) -> "Allowance":
        return Allowance(self.semantic[mask], self.rounding[mask])


def allowance(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, semantics: str,
              known: Optional[dict[str, Box]] = None) -> Allowance:
    """The allowances of regions inside the boxes lower/upper (b, n) for the rows C (k, m) or (b, k, m).

    `known`: intermediate bounds already computed for these boxes (CROWN's), which tighten the error
    bound a lot (`float_error.row_errors`)."""
    if semantics not in SEMANTICS:
        raise ValueError(f"unknown semantics {semantics!r}")
    with torch.no_grad():
        err = row_errors(graph, lower, upper, C, known)
        e = err.amax(dim=1) if err.shape[1] else torch.zeros(err.shape[0], dtype=torch.float64, device=err.device)
        finite = torch.isfinite(e)
        rounding = e
        if not bool(finite.all()):
            rounding = torch.where(finite, e, _magnitude_rounding(graph, lower, upper))
    semantic = e if semantics == "float32" else torch.zeros_like(e)
    return Allowance(semantic, rounding)


def rows_allowance(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, semantics: str,
                   known: Optional[dict[str, Box]] = None) -> Allowance:
    """The allowances of each row of C (k, m) or (b, k, m) on its own over each box lower/upper (b, n):
    (b, k) tensors, for judging rows one by one (the bound stages, where a clause is proved by any of
    its rows, and certify, where every row must prove)."""
    if semantics not in SEMANTICS:
        raise ValueError(f"unknown semantics {semantics!r}")
    with torch.no_grad():
        err = row_errors(graph, lower, upper, C, known)  # (b, k)
        rounding = err
        if not bool(torch.isfinite(err).all()):
            fallback = _magnitude_rounding(graph, lower, upper)[:, None].expand_as(err)
            rounding = torch.where(torch.isfinite(err), err, fallback)
    return Allowance(err if semantics == "float32" else torch.zeros_like(err), rounding)


def row_allowance(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, semantics: str,
                  known: Optional[dict[str, Box]] = None) -> Allowance:
    """`rows_allowance` of one box lower/upper (n,): (k,) tensors."""
    allow = rows_allowance(graph, lower.reshape(1, -1), upper.reshape(1, -1), C, semantics, known)
    return Allowance(allow.semantic[0], allow.rounding[0])


def proves(margin: Tensor, allow: Allowance) -> tuple[Tensor, Tensor]:
    """(proved, thin) masks for margins (b,) computed in margin.dtype.

    proved: the margin exceeds the semantic error plus its dtype's rounding allowance.
    thin: not proved, a float32 (or lower) margin within its rounding allowance of proving: worth
    recomputing in float64 (whose result is then judged here again)."""
    m = margin.detach().double()
    low_precision = margin.dtype != torch.float64
    rounding = allow.rounding if low_precision else allow.rounding * FLOAT64_SHARE
    proved = m > allow.semantic + rounding
    thin = ~proved & (m > 0) & (m > allow.semantic - rounding) if low_precision else torch.zeros_like(proved)
    return proved, thin


def _magnitude_rounding(graph: Graph, lower: Tensor, upper: Tensor) -> Tensor:
    """Fallback rounding allowance: max(1e-3, 1e-5 x the largest |value| of any node over the box)."""
    from verifier.bounds.ibp import ibp

    boxes = ibp(graph.to(lower.device, torch.float64), lower.double(), upper.double())
    scale = torch.stack([torch.maximum(bl.flatten(1).abs().amax(1), bu.flatten(1).abs().amax(1))
                         for bl, bu in boxes.values()]).amax(0)
    return torch.clamp(1e-5 * scale, min=1e-3)
