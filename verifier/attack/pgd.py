"""Spec-aware PGD: look for an input in the box that makes some clause of the violation hold.

The objective of a clause is max_i (C_i·y + d_i); a point with objective <= 0 meets every row,
i.e. is a candidate counterexample (to be replayed on onnxruntime before anyone believes it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from verifier.model.graph import Graph


@dataclass(frozen=True)
class AttackConfig:
    restarts: int = 32
    steps: int = 60
    seed: int = 0


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
    """Sum over rows of max(C_i·y + d_i, 0): for a conjunction it pushes every violated row down at
    once, where the max objective's gradient follows one row and stalls where rows tie."""
    return torch.relu(torch.einsum("bkm,bm->bk", C, y) + d).sum(dim=1)


def pgd_attack(
    graph: Graph,
    lower: torch.Tensor,
    upper: torch.Tensor,
    clauses: list[tuple[torch.Tensor, torch.Tensor]],
    config: AttackConfig = AttackConfig(),
    deadline: float | None = None,
) -> list[Candidate]:
    """Minimise each clause's objective from `restarts` starts (the centre among them), all in one batch.

    Returns, per clause, the best point found, sorted by objective (most violating first).
    """
    if not clauses:
        return []
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    n, r = lower.numel(), max(1, config.restarts)
    lo, hi = lower.reshape(1, n), upper.reshape(1, n)
    width = hi - lo
    starts = torch.rand((len(clauses) * r, n), generator=gen, dtype=lower.dtype).to(lower.device)
    starts[::r] = 0.5  # the centre is always one of the starts
    x = lo + starts * width
    C = torch.cat([c.unsqueeze(0).expand(r, -1, -1) for c, _ in clauses], dim=0).to(lower)
    d = torch.cat([dd.unsqueeze(0).expand(r, -1) for _, dd in clauses], dim=0).to(lower)
    best_x, best_obj = x.detach().clone(), torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
    for step in range(config.steps + 1):
        x = x.detach().requires_grad_(True)
        obj = clause_objective(graph.forward(x).reshape(x.shape[0], -1), C, d)
        improved = obj.detach() < best_obj
        best_obj = torch.where(improved, obj.detach(), best_obj)
        best_x = torch.where(improved.unsqueeze(1), x.detach(), best_x)
        if step == config.steps or (deadline is not None and time.monotonic() > deadline):
            break
        if bool((best_obj <= 0).any()) and step > 0:
            break  # a candidate exists; replay decides whether it is real
        loss = _hinge_loss(graph.forward(x).reshape(x.shape[0], -1), C, d) if C.shape[1] > 1 else obj
        (grad,) = torch.autograd.grad(loss.sum(), x) if loss.requires_grad else (torch.zeros_like(x),)
        lr = 0.1 * (1e-4 ** (step / max(1, config.steps - 1)))  # 0.1 -> 1e-5 of the width, geometrically
        x = torch.minimum(torch.maximum(x.detach() - lr * width * grad.sign(), lo), hi)
    return _best_per_clause(best_x, best_obj, len(clauses), r)


def _best_per_clause(xs: torch.Tensor, objs: torch.Tensor, n_clauses: int, r: int) -> list[Candidate]:
    out = []
    for j in range(n_clauses):
        k = int(torch.argmin(objs[j * r:(j + 1) * r])) + j * r
        out.append(Candidate(x=xs[k], objective=float(objs[k]), clause_index=j))
    return sorted(out, key=lambda c: c.objective)
