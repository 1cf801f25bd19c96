"""step (comparisons with a constant, Cast to bool / to an integer) and where: intervals contain every value
at sampled points, corners and the comparison's own threshold, and decide where the box decides."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.checks import corners, random_points
from verifier.bounds.ops import OPS
from verifier.bounds.step_ops import STEP_KINDS
from verifier.model.graph import Node

SHAPE = (2, 3)


def _step(kind: str, c: torch.Tensor) -> Node:
    return Node("n", "step", ("x",), SHAPE, {"c": c}, {"kind": kind})


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(STEP_KINDS), seed=st.integers(0, 2**31 - 1))
def test_step_interval_contains_values(kind: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    c = torch.round(2 * torch.randn(SHAPE, generator=gen, dtype=torch.float64))
    centre = torch.round(2 * torch.randn((4,) + SHAPE, generator=gen, dtype=torch.float64))
    radius = torch.randint(0, 3, (4,) + SHAPE, generator=gen).to(torch.float64) / 2  # ends on integers, width 0
    l, u = centre - radius, centre + radius
    x = torch.cat([random_points(l, u, 100, gen), corners(l, u), torch.clamp(c.expand_as(l), l, u)[None]])
    node = _step(kind, c)
    y = OPS["step"].forward(node, x.flatten(0, 1)).reshape(x.shape)
    lo, hi = OPS["step"].interval(node, (l, u))
    assert ((lo <= y) & (y <= hi)).all()
    (A_in,), bias = OPS["step"].backward(node, torch.randn((4, 2) + SHAPE, generator=gen, dtype=torch.float64),
                                         ((l, u),), None)
    assert A_in is None and bias.shape == (4, 2)


@pytest.mark.parametrize("kind,l,u,expected", [
    ("greater", 1.0, 2.0, (0.0, 1.0)), ("greater", 1.5, 2.0, (1.0, 1.0)), ("greater", 0.0, 1.0, (0.0, 0.0)),
    ("equal", 1.0, 1.0, (1.0, 1.0)), ("equal", 0.0, 2.0, (0.0, 1.0)), ("equal", 1.5, 2.0, (0.0, 0.0)),
    ("nonzero", 0.0, 0.0, (0.0, 0.0)), ("nonzero", -1.0, 1.0, (0.0, 1.0)), ("nonzero", 0.5, 1.0, (1.0, 1.0)),
    ("trunc", -1.5, 2.7, (-1.0, 2.0)),
])
def test_step_interval_decides_where_the_box_does(kind: str, l: float, u: float, expected: tuple) -> None:
    node = Node("n", "step", ("x",), (1,), {"c": torch.tensor([1.0])}, {"kind": kind})
    lo, hi = OPS["step"].interval(node, (torch.tensor([[l]]), torch.tensor([[u]])))
    assert (lo.item(), hi.item()) == expected


def test_where_interval_takes_the_decided_branch_or_the_hull() -> None:
    node = Node("n", "where", ("c", "a", "b"), (3,))
    cond = (torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0]]))
    a = (torch.tensor([[5.0, 5.0, 5.0]]), torch.tensor([[6.0, 6.0, 6.0]]))
    b = (torch.tensor([[-1.0, -1.0, -1.0]]), torch.tensor([[0.0, 0.0, 0.0]]))
    lo, hi = OPS["where"].interval(node, cond, a, b)
    assert lo.tolist() == [[5.0, -1.0, -1.0]] and hi.tolist() == [[6.0, 0.0, 6.0]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 100.0]))
def test_mul_mccormick_planes_bound_the_product(seed: int, scale: float) -> None:
    """Both signs of the coefficients, at sampled points and all corners of the two boxes."""
    gen = torch.Generator().manual_seed(seed)
    node = Node("n", "mul", ("a", "b"), SHAPE)
    boxes = []
    for _ in range(2):
        c = scale * torch.randn((3,) + SHAPE, generator=gen, dtype=torch.float64)
        r = scale * torch.rand((3,) + SHAPE, generator=gen, dtype=torch.float64)
        boxes.append((c - r, c + r))
    (la, ua), (lb, ub) = boxes
    pts_a = torch.cat([random_points(la, ua, 100, gen), la[None], ua[None], la[None], ua[None]])
    pts_b = torch.cat([random_points(lb, ub, 100, gen), lb[None], lb[None], ub[None], ub[None]])
    y = pts_a * pts_b
    lo, hi = OPS["mul"].interval(node, *boxes)
    assert ((lo <= y + 1e-9) & (y <= hi + 1e-9)).all()
    for sign in (1.0, -1.0):
        A = sign * torch.randn((3, 2) + SHAPE, generator=gen, dtype=torch.float64).abs()
        (A_a, A_b), bias = OPS["mul"].backward(node, A, tuple(boxes), None)
        exact = (A.unsqueeze(0) * y.unsqueeze(2)).flatten(3).sum(-1)
        linear = bias + ((A_a.unsqueeze(0) * pts_a.unsqueeze(2)).flatten(3).sum(-1)
                         + (A_b.unsqueeze(0) * pts_b.unsqueeze(2)).flatten(3).sum(-1))
        assert (linear <= exact + 1e-9 * (1 + exact.abs())).all()


def test_reciprocal_interval_is_the_whole_line_across_zero() -> None:
    node = Node("n", "reciprocal", ("x",), (2,))
    lo, hi = OPS["reciprocal"].interval(node, (torch.tensor([[-1.0, 2.0]]), torch.tensor([[1.0, 4.0]])))
    assert lo[0, 0] == -float("inf") and hi[0, 0] == float("inf")
    assert lo[0, 1] <= 0.25 <= hi[0, 1] and lo[0, 1] <= 0.5 <= hi[0, 1] and hi[0, 1] < 0.5 + 1e-6
