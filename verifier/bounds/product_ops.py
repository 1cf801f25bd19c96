"""Bound rules for products and quotients of two computed tensors (ONNX Mul/Div with both operands
input-dependent).

Same `OpRule` contract as `verifier.bounds.ops` (read its docstring).

"mul":        y = a * b elementwise, inputs of the output's shape. Interval: the extremes of the four products
              of the ends. Backward: McCormick's planes, which hold on the box [la, ua] x [lb, ub]:
                  a b >= lb a + la b - la lb        (from (a - la)(b - lb) >= 0)
                  a b <= lb a + ua b - ua lb        (from (ua - a)(b - lb) >= 0)
              positive coefficients take the lower plane, negative ones the upper; the planes' constants get
              a margin of a few ulps of the products' size for rounding.
"reciprocal": y = 1 / x. Interval [1/u, 1/l] where the box excludes 0, else the whole line; backward the
              constant relaxation from the interval.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from verifier.bounds.rule import BackwardResult, Box, OpRule, Tensor, per_sample_sum
from verifier.bounds.step_ops import constant_backward
from verifier.model.graph import Node

_MARGIN_ULPS = 32.0


def _mul(node: Node, a: Tensor, b: Tensor) -> Tensor:
    return a * b


def _mul_interval(node: Node, a: Box, b: Box) -> Box:
    products = torch.stack([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])
    products = torch.nan_to_num(products, nan=0.0)  # 0 * inf: the end of an unbounded box times 0
    return products.min(dim=0).values, products.max(dim=0).values


def _mul_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                  relax: Optional[Tensor]) -> BackwardResult:
    if input_bounds[0] is None or input_bounds[1] is None:
        raise ValueError(f"mul node {node.name!r}: backward needs bounds on both inputs")
    (la, ua), (lb, ub) = (tuple(t.unsqueeze(1) for t in box) for box in input_bounds)
    eps = torch.finfo(A.dtype).eps
    size = torch.maximum(la.abs(), ua.abs()) * torch.maximum(lb.abs(), ub.abs())
    margin = _MARGIN_ULPS * eps * (1 + size)
    A_pos, A_neg = A.clamp(min=0), A.clamp(max=0)
    A_a = (A_pos + A_neg) * lb
    A_b = A_pos * la + A_neg * ua
    bias = per_sample_sum(A_pos * (-la * lb - margin) + A_neg * (-ua * lb + margin))
    return [A_a, A_b], bias


def _reciprocal(node: Node, x: Tensor) -> Tensor:
    return 1.0 / x


def _reciprocal_interval(node: Node, box: Box) -> Box:
    l, u = box
    away = (l > 0) | (u < 0)
    inf = torch.full_like(l, float("inf"))
    lo, hi = torch.where(away, 1.0 / u, -inf), torch.where(away, 1.0 / l, inf)
    tol = 4 * torch.finfo(l.dtype).eps
    return lo - tol * lo.abs(), hi + tol * hi.abs()


PRODUCT_OPS: dict[str, OpRule] = {
    "mul": OpRule(forward=_mul, interval=_mul_interval, backward=_mul_backward),
    "reciprocal": OpRule(forward=_reciprocal, interval=_reciprocal_interval,
                         backward=constant_backward(_reciprocal_interval)),
}
