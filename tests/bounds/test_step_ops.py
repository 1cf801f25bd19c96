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
