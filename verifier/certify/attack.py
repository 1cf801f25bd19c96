"""Batched PGD on classification margins: many samples (and restarts) per forward pass.

`verifier.attack.pgd` attacks one box at a time; certifying a test set needs thousands of boxes, so here
every sample's restarts share one batch. The objective is the margin min_j (f_y - f_j) (rows of C);
a point with margin <= 0 is a candidate, which `cascade` confirms on onnxruntime before it counts.
Over an L1 / L2 ball (∩ the box) the steps are that norm's steepest-descent steps (`verifier.attack.lp`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from verifier.attack.lp import lp_descent, random_in_ball
from verifier.attack.pgd import sign_descent
from verifier.bounds.ball import LpBall, is_box_norm
from verifier.model.graph import Graph

Tensor = torch.Tensor


@dataclass(frozen=True)
class MarginAttack:
    restarts: int = 8  # starts per sample: the box centre, then uniform random points
    steps: int = 40
    seed: int = 0


def margins(graph: Graph, x: Tensor, C: Tensor) -> Tensor:
    """min over rows of C·f(x) per sample: x (B, n), C (B, k, m) -> (B,)."""
    y = graph.forward(x).reshape(x.shape[0], -1)
    return torch.einsum("bkm,bm->bk", C, y).amin(dim=1)


def margin_pgd(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor,
               config: MarginAttack = MarginAttack(), ball: Optional[LpBall] = None) -> tuple[Tensor, Tensor]:
    """The lowest-margin point found per sample in [lower, upper] (B, n) (∩ `ball`), and its margin on our graph.

    Signed-gradient steps (`sign_descent`) shrinking geometrically from 10% of the box width to 0.01%
    (over an L1 / L2 ball: steepest steps of its norm from a quarter of eps, `lp_descent`), restarts in
    one batch; the first start of each sample is its box centre (ball centre), the others random.
    The batch stops early once every sample has a point with margin <= 0.
    """
    B, n = lower.shape
    r = max(1, config.restarts)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    lo, hi = lower.repeat_interleave(r, 0), upper.repeat_interleave(r, 0)
    if is_box_norm(ball):
        starts = torch.rand((B * r, n), generator=gen, dtype=lower.dtype).to(lower.device)
        starts[::r] = 0.5
        x = lo + starts * (hi - lo)
    else:
        assert ball is not None
        centre, eps = ball.centre.repeat_interleave(r, 0), ball.eps.repeat_interleave(r, 0)
        offsets = random_in_ball(B * r, n, ball.p, gen, lower.dtype).to(lower.device)
        offsets[::r] = 0
        x = centre + eps.unsqueeze(1) * offsets
    Cr = C.repeat_interleave(r, 0)
    best_x, best = x.clone(), torch.full((B * r,), float("inf"), dtype=lower.dtype, device=lower.device)

    def step_loss(x: Tensor, step: int) -> Optional[Tensor]:
        obj = margins(graph, x, Cr)
        better = obj.detach() < best
        best.copy_(torch.where(better, obj.detach(), best))
        best_x.copy_(torch.where(better.unsqueeze(1), x.detach(), best_x))
        return None if bool((best.reshape(B, r).amin(1) <= 0).all()) else obj

    if is_box_norm(ball):
        sign_descent(x, lo, hi, config.steps, 1e-3, step_loss)
    else:
        assert ball is not None
        lp_descent(x, centre, eps, ball.p, lo, hi, config.steps, step_loss)
    per_sample = best.reshape(B, r)
    pick = per_sample.argmin(1)
    rows = torch.arange(B, device=lower.device) * r + pick
    return best_x[rows].detach(), per_sample.gather(1, pick[:, None])[:, 0]
