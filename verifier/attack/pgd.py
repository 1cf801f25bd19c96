"""Spec-aware PGD: look for an input in the box that makes some clause of the violation hold.

The objective of a clause is max_i (C_i·y + d_i); a point with objective <= 0 meets every row,
i.e. is a candidate counterexample (to be replayed on onnxruntime before anyone believes it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from verifier.config import AttackConfig  # noqa: F401 - re-exported: the attack's own settings
from verifier.model.graph import Graph


@dataclass(frozen=True)
class Candidate:
    x: torch.Tensor  # (n_inputs,) flattened, inside the box
    objective: float  # max_i (C_i y + d_i) on our graph; <= 0 means the clause holds
    clause_index: int


def clause_objective(y: torch.Tensor, C: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """max over rows of C·y + d per sample; y (B, m), C (B, k, m), d (B, k) -> (B,). k == 0 gives -inf."""
    if C.shape[1] == 0:
        return torch.full((y.shape[0],), -math.inf, dtype=y.dtype, device=y.device)
    return (torch.einsum("bkm,bm->bk", C, y) + d).amax(dim=1)


def _hinge_loss(y: torch.Tensor, C: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Sum over rows of max(C_i·y + d_i, 0), C (k, m) shared by the batch: for a conjunction it pushes
    every violated row down at once, where the max objective's gradient follows one row and stalls
    where rows tie."""
    return torch.relu(y @ C.T + d).sum(dim=1)


def pgd_attack(
    graph: Graph,
    lower: torch.Tensor,
    upper: torch.Tensor,
    clauses: list[tuple[torch.Tensor, torch.Tensor]],
    config: AttackConfig = AttackConfig(),
    deadline: float | None = None,
) -> list[Candidate]:
    """Minimise the clauses' objectives from `restarts` starts (the centre among them), in one batch.

    The batch stays `restarts` points however many clauses there are (a robustness spec has one per
    other class): the first half of the starts each chase one clause, round robin, the others chase
    whichever clause is closest to holding (a disjunction needs only one); see `_targets`. Every
    point is scored on every clause. Returns, per clause, the best point found, sorted by objective (most violating first).
    """
    if not clauses:
        return []
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    n, r, m = lower.numel(), max(1, config.restarts), len(clauses)
    lo, hi = lower.reshape(1, n), upper.reshape(1, n)
    starts = torch.rand((r, n), generator=gen, dtype=lower.dtype).to(lower.device)
    targets, centred = _targets(r, m, lower.device)  # (r, m): which clauses each start chases
    starts[centred] = 0.5
    x = lo + starts * (hi - lo)
    clauses = [(c.to(lower), dd.to(lower)) for c, dd in clauses]
    best_x = x[0].expand(m, n).clone()  # (m, n)
    best_obj = torch.full((m,), math.inf, dtype=x.dtype, device=x.device)

    def step_loss(x: torch.Tensor, step: int) -> torch.Tensor | None:
        y = graph.forward(x).reshape(r, -1)
        objs = torch.stack([clause_objective(y, C.expand(r, -1, -1), d.expand(r, -1)) for C, d in clauses], dim=1)
        _keep_best(best_x, best_obj, x.detach(), objs.detach())
        if deadline is not None and time.monotonic() > deadline:
            return None
        if bool((best_obj <= 0).any()) and step > 0:
            return None  # a candidate exists; replay decides whether it is real
        losses = torch.stack([_hinge_loss(y, C, d) if C.shape[0] > 1 else objs[:, j]
                              for j, (C, d) in enumerate(clauses)], dim=1)
        return torch.where(targets, losses, torch.full_like(losses, math.inf)).amin(dim=1)

    sign_descent(x, lo, hi, config.steps, 1e-4, step_loss)  # steps from 0.1 to 1e-5 of the width
    out = [Candidate(x=best_x[j], objective=float(best_obj[j]), clause_index=j) for j in range(m)]
    return sorted(out, key=lambda c: c.objective)


def sign_descent(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, steps: int, final_rate: float,
                 step_loss: Callable[[torch.Tensor, int], Optional[torch.Tensor]]) -> None:
    """Projected signed-gradient descent in the box [lo, hi] from the points x (one per row).

    At each step `step_loss(x, step)` scores the points (recording whatever its caller keeps) and returns
    a loss per point to descend, or None to stop. Steps move each coordinate by 0.1 of the box's width,
    shrinking geometrically to final_rate x 0.1 at the last step; the points after the last step are
    scored too.
    """
    width = hi - lo

    def move(x: torch.Tensor, grad: torch.Tensor, step: int) -> torch.Tensor:
        rate = 0.1 * (final_rate ** (step / max(1, steps - 1)))
        return torch.minimum(torch.maximum(x - rate * width * grad.sign(), lo), hi)

    descend(x, steps, step_loss, move)


def descend(x: torch.Tensor, steps: int, step_loss: Callable[[torch.Tensor, int], Optional[torch.Tensor]],
            move: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """The loop of projected gradient descent: score x with `step_loss(x, step)` (None stops), then
    x = move(x, gradient of the summed loss, step); the points after the last step are scored too."""
    for step in range(steps + 1):
        x = x.detach().requires_grad_(True)
        loss = step_loss(x, step)
        if loss is None or step == steps:
            return
        (grad,) = torch.autograd.grad(loss.sum(), x) if loss.requires_grad else (torch.zeros_like(x),)
        x = move(x.detach(), grad, step)


def _targets(r: int, m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, m) mask of the clauses each start chases, and the starts placed at the box's centre.

    Starts 0 .. r//2 - 1 (at least one) chase clause i % m alone, the rest chase all clauses. The
    first start of each clause and the first joint start begin at the centre, which sign-gradient
    steps with a shrinking rate search well from; the others begin at random points.
    """
    targets = torch.ones((r, m), dtype=torch.bool, device=device)
    centred = torch.zeros(r, dtype=torch.bool, device=device)
    centred[0] = True
    if m > 1:
        single = max(1, r // 2)
        targets[:single] = False
        rows = torch.arange(single, device=device)
        targets[rows, rows % m] = True
        centred[: min(single, m)] = True
        if single < r:
            centred[single] = True
    return targets, centred


def _keep_best(best_x: torch.Tensor, best_obj: torch.Tensor, x: torch.Tensor, objs: torch.Tensor) -> None:
    """Per clause, keep the point with the smallest objective seen so far (in place)."""
    obj, idx = objs.min(dim=0)  # (m,)
    improved = obj < best_obj
    best_obj.copy_(torch.where(improved, obj, best_obj))
    best_x.copy_(torch.where(improved.unsqueeze(1), x[idx], best_x))
