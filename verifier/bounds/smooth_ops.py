"""Bound rules for `square` (ONNX Pow with exponent 2), `power` (any other constant exponent, interval only)
and `softmax` (along one per-sample axis).

Same `OpRule` contract as `verifier.bounds.ops` (read its docstring).

square, y = x * x, convex: on [l, u] the chord through (l, l^2) and (u, u^2) lies above it (slope l + u,
bias -l u) and any tangent below it; the tangent is taken at the box's midpoint clamped to it (slope 2 d,
bias -d^2). Both lines get a margin of a few ulps of their magnitude for rounding. Interval: [l^2, u^2]
for l >= 0, [u^2, l^2] for u <= 0, else [0, max(l^2, u^2)].

softmax, y_i = exp(x_i) / sum_j exp(x_j) along `axis`: y_i increases with x_i and decreases with every
other x_j, so its smallest value on the box is at x_i = l_i and x_j = u_j (j != i): 1 / (1 + sum_{j != i}
exp(u_j - l_i)), and its largest the other way round. Those ends are computed with a log-sum-exp over the
pairs (i, j), widened by a few ulps and kept inside [0, 1]. The backward rule is the constant relaxation
(lower end <= y_i <= upper end): sound, and as tight as the interval.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from verifier.bounds.activations import LinearRelaxation, relaxation_backward
from verifier.bounds.rule import BackwardResult, Box, OpRule, Tensor, per_sample_sum
from verifier.bounds.step_ops import constant_backward
from verifier.model.graph import Node

_MARGIN_ULPS = 32.0


def _input_box(node: Node, input_bounds: Sequence[Optional[Box]]) -> Box:
    box = input_bounds[0]
    if box is None:
        raise ValueError(f"{node.op} node {node.name!r}: backward needs bounds on its input")
    return box


# --- square --------------------------------------------------------------------------------------------

def _square(node: Node, x: Tensor) -> Tensor:
    return x * x


def _square_interval(node: Node, box: Box) -> Box:
    l, u = box
    ll, uu = l * l, u * u
    lower = torch.where(l >= 0, ll, torch.where(u <= 0, uu, torch.zeros_like(l)))
    return lower, torch.maximum(ll, uu)


def square_relaxation(l: Tensor, u: Tensor) -> LinearRelaxation:
    """Tangent at the clamped midpoint below, chord above, each (B, 1, *s) with a rounding margin."""
    eps = torch.finfo(l.dtype).eps
    l, u = l.unsqueeze(1), u.unsqueeze(1)
    d = (0.5 * l + 0.5 * u).clamp(min=l, max=u)
    low_slope, low_bias = 2 * d, -d * d
    up_slope, up_bias = l + u, -l * u
    reach = torch.maximum(l.abs(), u.abs())
    margin = _MARGIN_ULPS * eps * (1 + reach * reach)
    return LinearRelaxation(low_slope, low_bias - margin, up_slope, up_bias + margin)


def _square_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                     relax: Optional[Tensor]) -> BackwardResult:
    return relaxation_backward(A, square_relaxation(*_input_box(node, input_bounds)))


# --- softmax -------------------------------------------------------------------------------------------

def _dim(node: Node) -> int:
    return 1 + int(node.attrs["axis"])


def _softmax(node: Node, x: Tensor) -> Tensor:
    return torch.softmax(x, dim=_dim(node))


def _softmax_interval(node: Node, box: Box) -> Box:
    l, u = box
    dim = _dim(node)
    lm, um = l.movedim(dim, -1), u.movedim(dim, -1)  # (..., n)
    n = lm.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=l.device)
    # lower_i = 1 / (1 + sum_{j != i} exp(u_j - l_i)) = sigmoid(-lse_{j != i}(u_j - l_i))
    low_pairs = (um.unsqueeze(-2) - lm.unsqueeze(-1)).masked_fill(eye, float("-inf"))
    up_pairs = (lm.unsqueeze(-2) - um.unsqueeze(-1)).masked_fill(eye, float("-inf"))
    lower = torch.sigmoid(-torch.logsumexp(low_pairs, dim=-1))
    upper = torch.sigmoid(-torch.logsumexp(up_pairs, dim=-1))
    tol = _MARGIN_ULPS * torch.finfo(l.dtype).eps
    lower = (lower - tol).clamp(min=0.0)
    upper = (upper + tol).clamp(max=1.0)
    return lower.movedim(-1, dim), upper.movedim(-1, dim)


# Axis lengths up to which the backward rule tries every shift (n^2 work per group); longer axes use 0 only.
_MAX_SHIFTS = 64


def _softmax_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                      relax: Optional[Tensor]) -> BackwardResult:
    """Constant relaxation, using that the outputs along the axis sum to 1: for any c per group,
    sum_i A_i y_i = c + sum_i (A_i - c) y_i >= c + sum_i [(A_i - c)+ l_i + (A_i - c)- u_i]. The best c is
    one of the A_k (the bound is concave and piecewise linear in c) or 0; every one is tried."""
    lower, upper = _softmax_interval(node, _input_box(node, input_bounds))
    dim = 1 + _dim(node)  # the axis in A (B, R, *s)
    a = A.movedim(dim, -1)  # (B, R, ..., n)
    lo, up = lower.unsqueeze(1).movedim(dim, -1), upper.unsqueeze(1).movedim(dim, -1)
    plain = (a.clamp(min=0) * lo + a.clamp(max=0) * up).sum(-1)  # c = 0
    n = a.shape[-1]
    if n > _MAX_SHIFTS:
        best = plain
    else:
        diff = a.unsqueeze(-2) - a.unsqueeze(-1)  # [..., k, i] = A_i - A_k
        shifted = a + (diff.clamp(min=0) * lo.unsqueeze(-2) + diff.clamp(max=0) * up.unsqueeze(-2)).sum(-1)
        margin = 8 * n * torch.finfo(A.dtype).eps * a.abs()  # sum_i y_i = 1 up to rounding
        best = torch.maximum(plain, (shifted - margin).max(dim=-1).values)
    return [None], best.reshape(best.shape[:2] + (-1,)).sum(-1)


# --- power: y = x ** e, e a constant per element (params e, broadcastable) -----------------------------

def _power(node: Node, x: Tensor) -> Tensor:
    return torch.pow(x, node.params["e"].to(x.dtype))


def _power_interval(node: Node, box: Box) -> Box:
    """By monotonicity on each piece: even integer e like square, odd positive integer e increasing; any e
    increasing (e > 0) or decreasing (e < 0) where l > 0. Elsewhere (negative bases with a fractional or
    negative e: NaN or poles) the whole line. Widened by a few ulps: pow is not correctly rounded."""
    l, u = box
    e = torch.broadcast_to(node.params["e"].to(l.dtype), l.shape[1:]).expand_as(l)
    pl, pu = torch.pow(l, e), torch.pow(u, e)
    integer = e == torch.round(e)
    even = integer & (torch.remainder(e, 2) == 0) & (e > 0)
    odd = integer & (torch.remainder(e, 2) == 1) & (e > 0)
    positive = l > 0
    inf = torch.full_like(l, float("inf"))
    lo = torch.where(even, torch.where(l >= 0, pl, torch.where(u <= 0, pu, torch.zeros_like(l))),
                     torch.where(odd | (positive & (e > 0)), pl, torch.where(positive & (e < 0), pu, -inf)))
    hi = torch.where(even, torch.maximum(pl, pu),
                     torch.where(odd | (positive & (e > 0)), pu, torch.where(positive & (e < 0), pl, inf)))
    one = torch.ones_like(l)
    lo, hi = torch.where(e == 0, one, lo), torch.where(e == 0, one, hi)  # x ** 0 = 1, even at 0 (as torch, ONNX)
    lo, hi = torch.nan_to_num(lo, nan=-float("inf")), torch.nan_to_num(hi, nan=float("inf"))
    tol = 8 * torch.finfo(l.dtype).eps
    return lo - tol * lo.abs(), hi + tol * hi.abs()


SMOOTH_OPS: dict[str, OpRule] = {
    "power": OpRule(forward=_power, interval=_power_interval, backward=constant_backward(_power_interval)),
    "square": OpRule(forward=_square, interval=_square_interval, backward=_square_backward),
    "softmax": OpRule(forward=_softmax, interval=_softmax_interval, backward=_softmax_backward),
}
