"""Lp balls (p = 1, 2, inf) as input sets of the bound interpreters.

An input set here is always a box (lower, upper); a ball rides along with it as `BallBox`, a (lower, upper)
tuple that also carries the ball. The box is the ball's bounding box intersected with the valid input range
(the clip), so the input set is ball ∩ box, and:

- everything that only understands boxes (IBP's intervals, forward linear bounds, relaxations, ...) sees the
  box, a superset of the input set, and so stays sound;
- a linear function A·x is concretised at the input (`concretize_lower` in `box`) both over the box and over
  the ball by Hölder, min over the ball of A·x = A·c − eps ‖A‖_q with 1/p + 1/q = 1, and the larger of the
  two lower bounds is taken. Each is a lower bound over a superset of ball ∩ box, so their maximum is one
  over the intersection. It is not the exact minimum over the intersection (that needs a small convex
  program per row), but it is never looser than either set alone, and costs one norm per row.

Code that selects batch rows of a box must keep the ball (`take_rows`); code that forgets it only loses
tightness, never soundness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

Tensor = torch.Tensor

# Command-line names of the norms and their p.
NORMS: dict[str, float] = {"linf": math.inf, "l2": 2.0, "l1": 1.0}


def norm_p(name: str) -> float:
    """p of a norm name (linf, l2, l1; also inf, l_inf, 2, 1); ValueError for any other."""
    key = name.strip().lower().replace("_", "")
    key = {"inf": "linf", "2": "l2", "1": "l1"}.get(key, key)
    if key not in NORMS:
        raise ValueError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return NORMS[key]


def dual(p: float) -> float:
    """q with 1/p + 1/q = 1."""
    if p == 1:
        return math.inf
    if math.isinf(p):
        return 1.0
    return p / (p - 1)


@dataclass(frozen=True)
class LpBall:
    """{x : ||x − centre||_p <= eps} per batch element; centre (B, n) flat, eps (B,)."""

    centre: Tensor
    eps: Tensor
    p: float

    @staticmethod
    def around(x: np.ndarray, eps: float, p: float, dtype: torch.dtype, device: Any) -> LpBall:
        """The ball of radius eps around float64 samples x (B, n), held in `dtype` and grown so that it
        contains the exact ball: eps plus the distance the centre moved when rounded, rounded upwards."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        centre = torch.as_tensor(x, dtype=dtype)
        moved = np.linalg.norm(x - centre.double().numpy(), ord=p, axis=1) if x.shape[1] else np.zeros(len(x))
        radius = torch.as_tensor(eps + moved * (1 + 1e-12), dtype=dtype)
        back = radius.double().numpy()
        radius = torch.where(torch.as_tensor(back < eps + moved), torch.nextafter(radius, radius + 1), radius)
        return LpBall(centre.to(device), radius.to(device), p)

    def take(self, rows: Tensor) -> LpBall:
        """The balls of batch rows `rows`."""
        return LpBall(self.centre[rows], self.eps[rows], self.p)

    def like(self, t: Tensor) -> LpBall:
        """The ball in t's dtype and device (float64 upcasts are exact)."""
        return LpBall(self.centre.to(t), self.eps.to(t), self.p)

    def lower(self, A: Tensor) -> Tensor:
        """min over the ball of A·x per batch element and row: A (B or 1, R, n) -> (B, R)."""
        centre = self.centre.to(A)
        if A.shape[0] == 1:
            at_centre = centre @ A[0].T
        else:
            at_centre = (A @ centre.unsqueeze(-1)).squeeze(-1)
        return at_centre - self.radius(A)

    def radius(self, A: Tensor) -> Tensor:
        """max over the ball of A·(x − centre) = eps ||A||_q per row: A (B or 1, R, n) -> (B or 1, R)."""
        q = dual(self.p)
        size = A.abs().sum(-1) if q == 1 else (A.abs().amax(-1) if math.isinf(q) else A.norm(p=q, dim=-1))
        return self.eps.to(A).unsqueeze(1) * size


class BallBox(tuple):
    """A box (lower, upper) that also carries an `LpBall`: the input set is their intersection."""

    ball: LpBall

    def __new__(cls, lower: Tensor, upper: Tensor, ball: LpBall) -> BallBox:
        self = super().__new__(cls, (lower, upper))
        self.ball = ball
        return self


def ball_of(box: Any) -> Optional[LpBall]:
    """The ball a box carries, or None for a plain box."""
    return getattr(box, "ball", None)


def with_ball(box: tuple[Tensor, Tensor], ball: Optional[LpBall]) -> tuple[Tensor, Tensor]:
    """The box carrying `ball` (moved to the box's dtype/device), or the box itself when ball is None."""
    if ball is None:
        return box
    return BallBox(box[0], box[1], ball.like(box[0]))


def take_rows(box: tuple[Tensor, Tensor], rows: Tensor) -> tuple[Tensor, Tensor]:
    """Batch rows `rows` of a box, keeping its ball if it has one (and what else it carries: a box
    type with a `take` method gathers itself)."""
    take = getattr(box, "take", None)
    if take is not None:
        return take(rows)
    ball = ball_of(box)
    return with_ball((box[0][rows], box[1][rows]), None if ball is None else ball.take(rows))


def is_box_norm(ball: Optional[LpBall]) -> bool:
    """True when there is no ball or it is an L-inf ball (its box says everything)."""
    return ball is None or math.isinf(ball.p)
