"""Bound rules for the piecewise-constant ops: comparisons with a constant, Cast to bool or to an integer, and
Where with a computed condition.

Same `OpRule` contract as `verifier.bounds.ops` (read its docstring). Values are floats: a comparison or a
Cast to bool gives 0 or 1, a Cast to an integer type the value truncated toward zero.

"step":  attrs kind, params c (broadcastable to the per-sample shape, for the comparisons):
         greater / greater_equal / less / less_equal / equal: x > c, x >= c, ... as 0 or 1;
         nonzero (Cast to bool): x != 0; trunc (Cast to an integer type): x rounded toward zero.
         Every kind is monotone in x except equal and nonzero, so the interval is the value at the ends;
         equal is 1 for sure only on the point box {c}, 0 for sure when c is outside [l, u] (nonzero likewise).
"where": inputs (cond, a, b), all of the output's shape: a where cond != 0, else b. Where the condition's box
         decides the branch, that branch's box; elsewhere the hull of both.
Both have the constant relaxation as backward rule (lower end <= y <= upper end): sound, no coefficients on
the inputs, so CROWN through them is IBP there; input-split branch and bound makes the boxes decide.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from verifier.bounds.rule import BackwardResult, Box, OpRule, Tensor, per_sample_sum
from verifier.model.graph import Node

STEP_KINDS = ("greater", "greater_equal", "less", "less_equal", "equal", "nonzero", "trunc")


def _kind(node: Node) -> str:
    kind = str(node.attrs["kind"])
    if kind not in STEP_KINDS:
        raise ValueError(f"step node {node.name!r}: unknown kind {kind!r}")
    return kind


def _c(node: Node, x: Tensor) -> Tensor:
    c = node.params.get("c")
    return torch.zeros((), dtype=x.dtype, device=x.device) if c is None else c.to(x.dtype)


def _step(node: Node, x: Tensor) -> Tensor:
    kind, c = _kind(node), _c(node, x)
    if kind == "trunc":
        return torch.trunc(x)
    out = {"greater": lambda: x > c, "greater_equal": lambda: x >= c, "less": lambda: x < c,
           "less_equal": lambda: x <= c, "equal": lambda: x == c, "nonzero": lambda: x != 0}[kind]()
    return out.to(x.dtype)


def _step_interval(node: Node, box: Box) -> Box:
    l, u = box
    kind, c = _kind(node), _c(node, l)
    if kind in ("greater", "greater_equal", "trunc"):  # nondecreasing
        return _step(node, l), _step(node, u)
    if kind in ("less", "less_equal"):  # nonincreasing
        return _step(node, u), _step(node, l)
    target = c if kind == "equal" else torch.zeros_like(c)
    surely_at = (l == target) & (u == target)
    maybe_at = (l <= target) & (target <= u)
    at_lo, at_hi = surely_at.to(l.dtype), maybe_at.to(l.dtype)
    if kind == "equal":
        return at_lo, at_hi
    return 1 - at_hi, 1 - at_lo  # nonzero = not at 0


def _where(node: Node, cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return torch.where(cond != 0, a, b)


def _where_interval(node: Node, cond: Box, a: Box, b: Box) -> Box:
    cl, cu = cond
    true = (cl > 0) | (cu < 0)  # every value of the box is nonzero
    false = (cl == 0) & (cu == 0)
    lo = torch.where(true, a[0], torch.where(false, b[0], torch.minimum(a[0], b[0])))
    hi = torch.where(true, a[1], torch.where(false, b[1], torch.maximum(a[1], b[1])))
    return lo, hi


def constant_backward(interval: Callable[..., Box]) -> Callable[..., BackwardResult]:
    """The backward rule of the relaxation lower <= y <= upper, the ends from `interval`."""
    def backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                 relax: Optional[Tensor]) -> BackwardResult:
        if any(b is None for b in input_bounds):
            raise ValueError(f"{node.op} node {node.name!r}: backward needs bounds on its inputs")
        lower, upper = interval(node, *input_bounds)
        lower, upper = lower.unsqueeze(1), upper.unsqueeze(1)
        zero = torch.zeros((), dtype=A.dtype, device=A.device)  # no 0 * inf where an end is infinite
        bias = per_sample_sum(torch.where(A > 0, A * lower, zero) + torch.where(A < 0, A * upper, zero))
        return [None] * len(input_bounds), bias
    return backward


STEP_OPS: dict[str, OpRule] = {
    "step": OpRule(forward=_step, interval=_step_interval, backward=constant_backward(_step_interval)),
    "where": OpRule(forward=_where, interval=_where_interval, backward=constant_backward(_where_interval)),
}
