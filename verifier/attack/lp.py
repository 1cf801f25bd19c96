"""Projected gradient descent in an Lp ball (p = 1, 2, inf) intersected with a box.

The feasible set is {x : ||x − c||_p <= eps, lo <= x <= hi} with the centre c inside the box. Projection:
onto the ball, then clipped to the box. Clipping moves each coordinate towards the box, which holds c, so
it never moves a point away from c in any coordinate: the clipped point stays in the ball, and the result
is feasible (not always the nearest feasible point, which PGD does not need).

Steps are steepest-descent steps of the norm: sign(g) for L-inf, g / ||g||_2 for L2, and for L1 a sparse
step over the largest tenth of |g| (the L1-steepest direction moves one coordinate, too slow to search with).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from verifier.attack.pgd import descend

Tensor = torch.Tensor


def project_ball(d: Tensor, eps: Tensor, p: float) -> Tensor:
    """The Euclidean projection of offsets d (N, n) onto {||d||_p <= eps} (eps (N,)) for p = inf and 2, and
    onto the L1 ball by the sort-based method of Duchi et al. (2008)."""
    e = eps.unsqueeze(1)
    if math.isinf(p):
        return torch.maximum(torch.minimum(d, e), -e)
    if p == 2:
        norm = d.norm(dim=1, keepdim=True)
        return d * torch.where(norm > e, e / norm.clamp_min(1e-30), torch.ones_like(norm))
    a = d.abs()
    inside = a.sum(1, keepdim=True) <= e
    u = a.sort(dim=1, descending=True).values
    css = u.cumsum(1) - e
    j = torch.arange(1, d.shape[1] + 1, dtype=d.dtype, device=d.device)
    rho = ((u - css / j) > 0).sum(1, keepdim=True).clamp_min(1)
    theta = css.gather(1, rho - 1) / rho.to(d.dtype)
    shrunk = d.sign() * (a - theta).clamp_min(0)
    return torch.where(inside, d, shrunk)


def project(x: Tensor, centre: Tensor, eps: Tensor, p: float, lo: Tensor, hi: Tensor) -> Tensor:
    """A feasible point near x: the ball projection around centre, then clipped to [lo, hi]."""
    y = centre + project_ball(x - centre, eps, p)
    return torch.minimum(torch.maximum(y, lo), hi)


def steepest(g: Tensor, p: float) -> Tensor:
    """The unit-norm (in Lp) direction of steepest ascent of a linear function with gradient g (N, n)."""
    if math.isinf(p):
        return g.sign()
    if p == 2:
        return g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)
    k = max(1, g.shape[1] // 10)
    top = g.abs().topk(k, dim=1).indices
    out = torch.zeros_like(g)
    return out.scatter(1, top, g.gather(1, top).sign() / k)


def random_in_ball(n: int, dim: int, p: float, gen: torch.Generator, dtype: torch.dtype,
                   surface: bool = False) -> Tensor:
    """n random offsets (n, dim) in the unit Lp ball (on its surface when `surface`), on the CPU."""
    if math.isinf(p):
        u = torch.rand((n, dim), generator=gen, dtype=dtype) * 2 - 1
        if surface:
            pick = torch.randint(dim, (n,), generator=gen)
            u[torch.arange(n), pick] = u[torch.arange(n), pick].sign() + (u[torch.arange(n), pick] == 0)
        return u
    if p == 2:
        d = torch.randn((n, dim), generator=gen, dtype=dtype)
    else:  # Laplace directions are uniform over the L1 sphere once normalised
        d = -torch.log(torch.rand((n, dim), generator=gen, dtype=dtype).clamp_min(1e-300))
        d = d * (torch.randint(2, (n, dim), generator=gen) * 2 - 1)
    d = d / d.norm(p=p, dim=1, keepdim=True).clamp_min(1e-30)
    if surface:
        return d
    return d * torch.rand((n, 1), generator=gen, dtype=dtype) ** (1.0 / max(dim, 1))


def lp_descent(x: Tensor, centre: Tensor, eps: Tensor, p: float, lo: Tensor, hi: Tensor, steps: int,
               step_loss: Callable[[Tensor, int], Optional[Tensor]], first_rate: float = 0.25,
               final_rate: float = 1e-3) -> None:
    """Projected steepest descent in ball ∩ box from the points x (one per row; centre, eps per row).

    As `verifier.attack.pgd.sign_descent`: `step_loss(x, step)` scores the points and returns a loss per
    point, or None to stop. Step lengths (in the norm) shrink geometrically from first_rate · eps to
    final_rate · first_rate · eps; the points after the last step are scored too.
    """
    def move(x: Tensor, grad: Tensor, step: int) -> Tensor:
        rate = first_rate * (final_rate ** (step / max(1, steps - 1)))
        return project(x - rate * eps.unsqueeze(1) * steepest(grad, p), centre, eps, p, lo, hi)

    descend(project(x.detach(), centre, eps, p, lo, hi), steps, step_loss, move)
