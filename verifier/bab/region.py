"""The input set of a ReLU-split search: a box, or an Lp ball intersected with a box.

ReLU splitting never splits the input, so the set only matters where the search touches the input
itself: concretising linear bounds (here the ball rides with the box as `ball.BallBox`, and
`box.concretize_lower` takes the dual norm; that one function owns the concretisation), and the
attacks, which need a starting point (a linear bound's minimiser), random points, and projected steps.
A region without a ball behaves exactly as the plain box always did.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from verifier.attack.lp import project, random_in_ball, steepest
from verifier.bounds.ball import LpBall

Tensor = torch.Tensor


@dataclass(frozen=True)
class InputRegion:
    """[xl, xu] ((1, n) each), intersected with `ball` (batch 1) when given. The ball's centre must lie in
    the box (projection onto the ball, then clipping to the box, then stays in the ball)."""

    xl: Tensor
    xu: Tensor
    ball: Optional[LpBall] = None

    def balls(self, n: int, like: Optional[Tensor] = None) -> Optional[LpBall]:
        """The ball repeated for n domains (views, in like's dtype), so that selecting rows keeps it."""
        if self.ball is None:
            return None
        ball = self.ball if like is None else self.ball.like(like)
        return LpBall(ball.centre.expand(n, -1), ball.eps.expand(n), ball.p)

    def minimiser(self, a: Tensor) -> Tensor:
        """Points (N, n) of the region with a small a·x per row of a (N, n): the box's exact minimiser
        (the middle where a is 0); over a ball, the ball's minimiser clipped into the box (feasible, and
        exact when the clip does not bind)."""
        if self.ball is None:
            return torch.where(a > 0, self.xl, torch.where(a < 0, self.xu, (self.xl + self.xu) / 2))
        return self.project(self.ball.centre - self.ball.eps.unsqueeze(1) * _dual_direction(a, self.ball.p))

    def project(self, x: Tensor) -> Tensor:
        """A point of the region near each row of x (the box: clipping; a ball: `attack.lp.project`)."""
        if self.ball is None:
            return torch.minimum(torch.maximum(x, self.xl), self.xu)
        b = self.ball
        return project(x, b.centre.expand_as(x), b.eps.expand(x.shape[0]), b.p, self.xl, self.xu)

    def uniform(self, n: int, gen: torch.Generator) -> Tensor:
        """n random points of the region (uniform in the box; in the ball, then clipped to the box)."""
        dtype, device = self.xl.dtype, self.xl.device
        if self.ball is None:
            t = torch.rand((n, self.xl.shape[1]), generator=gen, dtype=dtype).to(device)
            return self.xl + t * (self.xu - self.xl)
        offsets = random_in_ball(n, self.xl.shape[1], self.ball.p, gen, dtype).to(device)
        return self.project(self.ball.centre + self.ball.eps.unsqueeze(1) * offsets)

    def centre(self) -> Tensor:
        """One point of the region, (n,)."""
        if self.ball is None:
            return ((self.xl + self.xu) / 2)[0]
        return self.project(self.ball.centre)[0]

    def step(self, x: Tensor, grad: Tensor, rate: float) -> Tensor:
        """One projected descent step of length `rate` relative to the region's size: signed steps of
        rate x the box's width, or steepest steps of the ball's norm of 2.5 rate x eps (the ball's own
        PGD starts at a quarter of eps, `attack.lp.lp_descent`)."""
        if self.ball is None:
            return torch.minimum(torch.maximum(x - rate * (self.xu - self.xl) * grad.sign(), self.xl), self.xu)
        return self.project(x - 2.5 * rate * self.ball.eps.unsqueeze(1) * steepest(grad, self.ball.p))

    def to(self, dtype: torch.dtype) -> InputRegion:
        """The region in another dtype (the float64 rechecks; upcasts are exact)."""
        xl, xu = self.xl.to(dtype), self.xu.to(dtype)
        return InputRegion(xl, xu, None if self.ball is None else self.ball.like(xl))


def _dual_direction(a: Tensor, p: float) -> Tensor:
    """The unit-Lp-norm d maximising a·d (Hölder's equality case): sign(a) for p = inf, a / ||a||_2 for
    p = 2, and for p = 1 the unit vector of a's largest |coefficient|."""
    if math.isinf(p):
        return a.sign()
    if p == 2:
        return a / a.norm(dim=1, keepdim=True).clamp_min(1e-30)
    top = a.abs().argmax(dim=1, keepdim=True)
    return torch.zeros_like(a).scatter(1, top, a.gather(1, top).sign())
