"""The bound stages of the cascade, batched over samples, and the per-sample branch-and-bound stage.

IBP, CROWN and alpha-CROWN bound C·f over a batch of boxes at once (C (B, k, m): one margin matrix per
sample). A float32 proof whose margin is thin (`verifier.bounds.margin_check`) is redone in float64 before it counts,
as branch and bound does. Branch and bound runs per sample through `verifier.api`'s solver on a one-box
spec, so it is exactly the engine `verifier verify` uses.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from verifier.bounds.ball import LpBall
from verifier.model.graph import Graph

Tensor = torch.Tensor

STAGES = ("pgd", "ibp", "crown", "alpha", "bab")
BOUND_STAGES = ("ibp", "crown", "alpha")


def bound_rows(stage: str, graph: Graph, lower: Tensor, upper: Tensor, C: Tensor,
               deadline: Optional[float] = None, ball: Optional[LpBall] = None) -> Tensor:
    """Lower bounds (B, k) of C·f(x) over each sample's box (∩ its Lp ball) by one stage (ibp, crown or alpha)."""
    from verifier.bounds.alpha import alpha_crown
    from verifier.bounds.crown import crown
    from verifier.bounds.ibp import ibp_objective

    if stage == "alpha":
        return alpha_crown(graph, lower, upper, C, deadline=deadline, ball=ball).lb.detach()
    with torch.no_grad():
        if stage == "ibp":
            return ibp_objective(graph, lower, upper, C, ball=ball)[0]
        if stage == "crown":
            return crown(graph, lower, upper, C, need_upper=False, ball=ball).lb
    raise ValueError(f"not a bound stage: {stage}")


def checked_rows(stage: str, graph: Graph, graph64: Any, lower: Tensor, upper: Tensor, C: Tensor,
                 deadline: Optional[float] = None, ball: Optional[LpBall] = None) -> np.ndarray:
    """`bound_rows` as float64 numpy, each row judged by `margin_check.proves` (a row that does not prove
    is lowered to at most 0); samples that every row would prove but some only thinly (within the float32
    bound's rounding allowance) are re-bounded in float64 (`graph64()` gives the float64 graph) and keep
    only what that proves."""
    from verifier.bounds.margin_check import proves, rows_allowance

    raw = bound_rows(stage, graph, lower, upper, C, deadline, ball)
    allow = rows_allowance(graph, lower, upper, C, "real")
    proved, thin = proves(raw.detach(), allow)
    rows = raw.double().cpu().numpy()
    redo = ((proved | thin).all(dim=1) & thin.any(dim=1)).cpu().numpy()
    if redo.any() and lower.dtype != torch.float64:
        sel = torch.as_tensor(np.flatnonzero(redo), device=lower.device)
        exact = bound_rows(stage, graph64(), lower[sel].double(), upper[sel].double(), C[sel].double(), deadline,
                           None if ball is None else ball.take(sel).like(lower[sel].double()))
        proved[sel] = proves(exact, allow.index(sel))[0]
        rows[redo] = exact.cpu().numpy()
    return np.where(proved.cpu().numpy(), rows, np.minimum(rows, 0.0))


@dataclass(frozen=True)
class BabOutcome:
    verdict: str  # verified / falsified / unknown / timeout
    margin: Optional[float]  # lower bound of the margin when the solver reports one


def bab_sample(net: Any, lower: np.ndarray, upper: np.ndarray, label: int, timeout: float, seed: int,
               source: str) -> BabOutcome:
    """Decide one sample with `verifier.api`'s solver: the spec 'some j != label has f_j >= f_label'
    over the float64 box, with a counterexample replayed on onnxruntime through the normalisation."""
    from verifier.api import _Deadline, _solve
    from verifier.attack.pgd import AttackConfig
    from verifier.config import VerifyOptions
    from verifier.result import SAT, UNSAT
    from verifier.spec.spec import Clause, Property, Spec

    m = net.n_outputs
    eye = np.eye(m)
    clauses = tuple(Clause((eye[label] - eye[j])[None], np.zeros(1)) for j in range(m) if j != label)
    spec = Spec(net.n_inputs, m, (Property(lower, upper, clauses),), source=source)
    # The cascade attacked already: the solver's own attack only tries the box centre.
    opts = VerifyOptions(method="auto", timeout=max(timeout, 1e-3), device=net.device, check_model=False,
                         seed=seed, attack=AttackConfig(restarts=1, steps=0, seed=seed, homotopy_restarts=0))
    start = time.monotonic()
    result = _solve(net.problem(spec), opts, _Deadline(opts.timeout, start), {})
    margin = result.margin if result.margin is not None and math.isfinite(result.margin) else None
    if result.verdict == UNSAT:
        return BabOutcome("verified", margin)
    if result.verdict == SAT:
        return BabOutcome("falsified", None)
    return BabOutcome(result.verdict, margin)  # unknown / timeout
