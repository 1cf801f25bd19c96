"""square (Pow 2) and softmax rules: sampled points and corners inside the interval, backward lines below the
function for both signs of the coefficients (the upper bound is the lower bound of -A), in float32 and float64."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.checks import assert_inside, corners, random_points
from verifier.bounds.ops import OPS
from verifier.model.graph import Node

SHAPE = (2, 3)


def _node(op: str, axis: int) -> Node:
    return Node("n", op, ("x",), SHAPE, attrs={"axis": axis} if op == "softmax" else {})


def _box(gen: torch.Generator, scale: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    centre = scale * torch.randn((4,) + SHAPE, generator=gen, dtype=torch.float64)
    radius = scale * torch.rand((4,) + SHAPE, generator=gen, dtype=torch.float64)
    radius = torch.where(torch.rand(radius.shape, generator=gen, dtype=torch.float64) < 0.2, 0.0, radius)
    return (centre - radius).to(dtype), (centre + radius).to(dtype)


def _points(l: torch.Tensor, u: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.cat([random_points(l, u, 300, gen), corners(l, u)])


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(["square", "softmax"]), seed=st.integers(0, 2**31 - 1), axis=st.integers(0, 1),
       scale=st.sampled_from([0.1, 1.0, 30.0, 1000.0]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_interval_and_backward_hold_at_sampled_points(op: str, seed: int, axis: int, scale: float,
                                                       dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    node, rule = _node(op, axis), OPS[op]
    l, u = _box(gen, scale, dtype)
    x = _points(l.double(), u.double(), gen).to(dtype)  # (N, B, *s), inside the box in dtype
    x = torch.maximum(torch.minimum(x, u), l)
    y = rule.forward(node, x.flatten(0, 1)).reshape(x.shape).double()
    lo, hi = rule.interval(node, (l, u))
    assert_inside(y, lo.double(), hi.double(), f"{op} interval")
    for sign in (1.0, -1.0):
        A = sign * torch.randn((4, 3) + SHAPE, generator=gen, dtype=dtype)
        (A_in,), bias = rule.backward(node, A, ((l, u),), None)
        A_in = torch.zeros_like(A) if A_in is None else A_in  # the constant relaxation: no coefficients
        exact = (A.double().unsqueeze(0) * y.unsqueeze(2)).flatten(3).sum(-1)
        linear = bias.double() + (A_in.reshape((4, 3) + SHAPE).double().unsqueeze(0)
                                  * x.double().unsqueeze(2)).flatten(3).sum(-1)
        # float32 sums round (the engine redoes thin float32 proofs in float64); float64 must be exact
        mass = (A.double().abs().unsqueeze(0) * y.abs().unsqueeze(2)).flatten(3).sum(-1)
        tol = (1e-9 if dtype == torch.float64 else 1e-5) * (1 + mass)
        assert (linear <= exact + tol).all(), f"{op} backward is not a lower bound (sign {sign})"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), positive=st.booleans())
def test_power_interval_holds_for_any_exponent(seed: int, positive: bool) -> None:
    """Fractional and negative exponents on positive bases; on bases of any sign the interval may be the
    whole line, but never misses a (non-NaN) value."""
    gen = torch.Generator().manual_seed(seed)
    e = torch.tensor([[-0.5, 0.5, 1.5], [-1.0, -2.0, 7.0]], dtype=torch.float64)
    node = Node("n", "power", ("x",), SHAPE, {"e": e})
    l, u = _box(gen, 2.0, torch.float64)
    if positive:
        l, u = l.abs() + 0.01, u.abs() + l.abs() + 0.01
    x = _points(l, u, gen)
    y = OPS["power"].forward(node, x.flatten(0, 1)).reshape(x.shape)
    lo, hi = OPS["power"].interval(node, (l, u))
    ok = torch.isnan(y) | ((y >= lo - 1e-9 * (1 + y.abs())) & (y <= hi + 1e-9 * (1 + y.abs())))
    assert ok.all()
    if positive:
        assert torch.isfinite(lo).all() and torch.isfinite(hi).all()


def test_square_interval_is_exact_at_the_ends() -> None:
    l = torch.tensor([[-3.0, 1.0, -2.0]])
    u = torch.tensor([[2.0, 4.0, -1.0]])
    lo, hi = OPS["square"].interval(_node("square", 0), (l, u))
    assert lo.tolist() == [[0.0, 1.0, 1.0]] and hi.tolist() == [[9.0, 16.0, 4.0]]


def test_softmax_interval_is_tight_on_a_point_box() -> None:
    x = torch.randn(2, *SHAPE, dtype=torch.float64)
    node = _node("softmax", 1)
    lo, hi = OPS["softmax"].interval(node, (x, x))
    y = torch.softmax(x, dim=2)
    assert (lo <= y).all() and (y <= hi).all() and (hi - lo).max() < 1e-12


@pytest.mark.parametrize("op", ["square", "softmax"])
def test_rules_are_registered_non_affine(op: str) -> None:
    assert not OPS[op].affine


def test_softmax_backward_knows_the_outputs_sum_to_one() -> None:
    """Bounds on sum(y) and on y_0 + y_1 (of 4) from the shifted constant relaxation: 1 and below 1."""
    node = _node("softmax", 1)
    l = torch.full((1, 2, 4), -10.0, dtype=torch.float64)
    u = torch.full((1, 2, 4), 10.0, dtype=torch.float64)
    node = Node("n", "softmax", ("x",), (2, 4), attrs={"axis": 1})
    ones = torch.ones(1, 1, 2, 4, dtype=torch.float64)
    _, low = OPS["softmax"].backward(node, ones, ((l, u),), None)
    _, neg = OPS["softmax"].backward(node, -ones, ((l, u),), None)
    assert 2 - 1e-9 <= low.item() <= 2 and -2 - 1e-9 <= neg.item() <= -2 + 1e-9  # two groups, each sums to 1
    pair = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64).expand(1, 1, 2, 4)
    _, neg_pair = OPS["softmax"].backward(node, -pair, ((l, u),), None)
    assert -neg_pair.item() < 2.0  # y_0 + y_1 <= 1 - (lower ends of y_2, y_3), per group
