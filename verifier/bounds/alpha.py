"""alpha-CROWN: CROWN with the lower relu slopes optimised by projected gradient ascent (Adam).

Every slope in [0, 1] gives a sound bound, so every iterate is sound and the best bound per row over
all iterates is kept. Intermediate bounds come from one plain CROWN pass and are held fixed; the
slopes of the objective pass are optimised per neuron, per objective row and per batch element.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Optional

import torch

from verifier.bounds.box import Box
from verifier.bounds.crown import crown
from verifier.bounds.ops import default_relu_alpha
from verifier.model.graph import Graph

Tensor = torch.Tensor


@dataclass(frozen=True)
class AlphaConfig:
    iterations: int = 20
    lr: float = 0.1


@dataclass(frozen=True)
class AlphaResult:
    lb: Tensor  # (B, k) best lower bound of C @ y over all iterates
    alphas: Mapping[str, Tensor]  # per relu node, (B, k, *shape): slopes of the best iterate per row
    intermediate: Mapping[str, Box]


def initial_alphas(graph: Graph, intermediate: Mapping[str, Box], k: int) -> dict[str, Tensor]:
    """CROWN's adaptive slopes, one copy per objective row: iteration 0 of alpha-CROWN is CROWN.
    Leaky relus share relu's parameter (a position in [0, 1] between their two valid lower slopes)."""
    out = {}
    for node in graph.nodes:
        if node.op in ("relu", "leaky_relu"):
            l, u = intermediate[node.inputs[0]]
            a = default_relu_alpha(l, u).unsqueeze(1)
            out[node.name] = a.expand((a.shape[0], k) + a.shape[2:]).clone()
    return out


def alpha_crown(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, *,
                config: AlphaConfig = AlphaConfig(), deadline: Optional[float] = None,
                intermediate: Optional[Mapping[str, Box]] = None,
                init: Optional[Mapping[str, Tensor]] = None) -> AlphaResult:
    """Lower bounds of C @ f(x) over [lower, upper], at least as tight as CROWN's.

    `init` warm-starts the slopes (e.g. from a parent subproblem); `deadline` (time.monotonic())
    stops the iterations early with the best bound so far.
    """
    with torch.no_grad():
        base = crown(graph, lower, upper, C, intermediate=intermediate, need_upper=False)
    inter = {name: (l.detach(), u.detach()) for name, (l, u) in base.intermediate.items()}
    k = base.lb.shape[1]
    alphas = {n: a.detach().clone().requires_grad_(True)
              for n, a in (dict(init) if init is not None else initial_alphas(graph, inter, k)).items()}
    best_lb = base.lb.detach().clone()
    best_alphas = initial_alphas(graph, inter, k)  # the slopes behind best_lb, CROWN's bound, so far
    if not alphas or config.iterations <= 0:
        return AlphaResult(best_lb, best_alphas, inter)
    opt = torch.optim.Adam(list(alphas.values()), lr=config.lr)
    for _ in range(config.iterations):
        if deadline is not None and time.monotonic() > deadline:
            break
        lb = crown(graph, lower, upper, C, intermediate=inter, alphas=alphas, need_upper=False).lb
        _keep_best(best_lb, best_alphas, lb.detach(), alphas)
        opt.zero_grad(set_to_none=True)
        (-lb.sum()).backward()
        opt.step()
        with torch.no_grad():
            for a in alphas.values():
                a.clamp_(0.0, 1.0)
    with torch.no_grad():
        lb = crown(graph, lower, upper, C, intermediate=inter, alphas=alphas, need_upper=False).lb
        _keep_best(best_lb, best_alphas, lb, alphas)
    return AlphaResult(best_lb, best_alphas, inter)


def _keep_best(best_lb: Tensor, best_alphas: dict[str, Tensor], lb: Tensor, alphas: Mapping[str, Tensor]) -> None:
    """Per (batch, row), remember the bound and slopes of the best iterate so far (in place)."""
    better = lb > best_lb  # (B, k)
    best_lb.copy_(torch.where(better, lb, best_lb))
    for name, a in alphas.items():
        mask = better.reshape(better.shape + (1,) * (a.dim() - 2))
        best_alphas[name].copy_(torch.where(mask, a.detach(), best_alphas[name]))
