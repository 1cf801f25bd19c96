"""Concrete points that try hard to break a bound, and the assertion that they do not."""
from __future__ import annotations

import itertools

import torch

from verifier.model.graph import Graph

Tensor = torch.Tensor
REL_TOL = 1e-8  # the bounds run in float64; this only absorbs rounding


def objective_values(graph: Graph, C: Tensor, X: Tensor) -> Tensor:
    """C @ f(x) for points X (N, B, *input_shape) -> (N, B, k); C (k, n) or (B, k, n)."""
    N, B = X.shape[:2]
    y = graph.forward(X.reshape((N * B,) + graph.input_shape)).reshape(N, B, -1)
    C = C if C.dim() == 3 else C.unsqueeze(0).expand(B, -1, -1)
    return torch.einsum("bkn,Nbn->Nbk", C, y)


def random_points(lower: Tensor, upper: Tensor, n: int, gen: torch.Generator) -> Tensor:
    t = torch.rand((n,) + lower.shape, generator=gen, dtype=lower.dtype)
    return lower + t * (upper - lower)


def corners(lower: Tensor, upper: Tensor, limit: int = 64) -> Tensor:
    """All box corners (N, B, *s) if there are at most `limit`, else the first `limit` of them."""
    n = lower[0].numel()
    picks = list(itertools.islice(itertools.product((0.0, 1.0), repeat=n), limit))
    t = torch.tensor(picks, dtype=lower.dtype).reshape((len(picks), 1) + lower.shape[1:])
    return lower + t * (upper - lower)


def pgd_points(graph: Graph, C: Tensor, lower: Tensor, upper: Tensor, gen: torch.Generator,
               starts: int = 4, steps: int = 25) -> Tensor:
    """Points found by projected sign-gradient descent pushing each row of C @ f(x) down and up.

    Returns (2 * k * starts, B, *input_shape): for every (direction, row) pair its own restarts.
    """
    k = C.shape[-2]
    signs = torch.tensor([1.0, -1.0], dtype=lower.dtype).repeat_interleave(k)  # (2k,)
    rows = torch.arange(2 * k) % k
    x = random_points(lower, upper, 2 * k * starts, gen)
    target_sign = signs.repeat(starts)
    target_row = rows.repeat(starts)
    step = (upper - lower) / 4
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        values = objective_values(graph, C, x)  # (N, B, k)
        picked = values.gather(2, target_row.view(-1, 1, 1).expand(-1, values.shape[1], 1))
        (picked.squeeze(2) * target_sign.view(-1, 1)).sum().backward()
        x = torch.minimum(torch.maximum(x - step * x.grad.sign(), lower), upper)
        step = step * 0.85
    return x.detach()


def attack_points(graph: Graph, C: Tensor, lower: Tensor, upper: Tensor, seed: int) -> Tensor:
    """Random points, corners, the centre and PGD points of the boxes: (N, B, *input_shape)."""
    gen = torch.Generator().manual_seed(seed)
    centre = ((lower + upper) / 2).unsqueeze(0)
    return torch.cat([random_points(lower, upper, 64, gen), corners(lower, upper), centre,
                      pgd_points(graph, C, lower, upper, gen)])


def assert_inside(values: Tensor, lower: Tensor, upper: Tensor, what: str) -> None:
    """values (N, *b) must lie in [lower, upper] (*b) up to a relative rounding tolerance."""
    scale = 1.0 + max(values.abs().max().item(), _finite_max(lower), _finite_max(upper))
    tol = REL_TOL * scale
    below = (lower - values).max().item()
    above = (values - upper).max().item()
    assert below <= tol, f"{what}: a value lies {below:.3g} below the lower bound"
    assert above <= tol, f"{what}: a value lies {above:.3g} above the upper bound"


def _finite_max(t: Tensor) -> float:
    finite = t[torch.isfinite(t)]
    return finite.abs().max().item() if finite.numel() else 0.0
