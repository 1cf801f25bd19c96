"""PGD finds violations that exist, stays inside the box, and replay snapping keeps float32 points in the box."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.attack.pgd import AttackConfig, clause_objective, pgd_attack
from verifier.attack.replay import snap_into_box
from verifier.model.graph import Graph, Node


def relu_net(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> Graph:
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    n_in, hidden, n_out = w1.shape[1], w1.shape[0], w2.shape[0]
    return Graph(
        nodes=(
            Node("x", "input", (), (n_in,)),
            Node("fc1", "linear", ("x",), (hidden,), {"W": t(w1), "b": t(b1)}),
            Node("r1", "relu", ("fc1",), (hidden,)),
            Node("fc2", "linear", ("r1",), (n_out,), {"W": t(w2), "b": t(b2)}),
        ),
        input_name="x", output_name="fc2",
    )


def test_finds_the_only_violating_corner():
    # y = relu(x0) + relu(x1): y >= 1.9 only near the corner (1, 1) of [-1, 1]^2
    g = relu_net(np.eye(2), np.zeros(2), np.ones((1, 2)), np.zeros(1))
    lo, hi = torch.full((2,), -1.0, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    C, d = torch.tensor([[-1.0]], dtype=torch.float64), torch.tensor([1.9], dtype=torch.float64)
    (cand,) = pgd_attack(g, lo, hi, [(C, d)], AttackConfig(restarts=4, steps=30))
    assert cand.objective <= 0
    assert torch.all(cand.x >= lo) and torch.all(cand.x <= hi)
    y = g.forward(cand.x[None])
    assert float(clause_objective(y, C[None], d[None])) <= 0


def test_impossible_clause_is_never_claimed():
    g = relu_net(np.eye(2), np.zeros(2), np.ones((1, 2)), np.zeros(1))
    lo, hi = torch.full((2,), -1.0, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    C, d = torch.tensor([[-1.0]], dtype=torch.float64), torch.tensor([2.5], dtype=torch.float64)  # y >= 2.5
    (cand,) = pgd_attack(g, lo, hi, [(C, d)], AttackConfig(restarts=8, steps=20))
    assert cand.objective > 0


def test_empty_clause_is_met_anywhere():
    g = relu_net(np.eye(2), np.zeros(2), np.ones((1, 2)), np.zeros(1))
    lo, hi = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    (cand,) = pgd_attack(g, lo, hi, [(torch.zeros((0, 1), dtype=torch.float64), torch.zeros(0, dtype=torch.float64))])
    assert cand.objective == -np.inf


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(0, 1e3), st.floats(0, 1)), min_size=1, max_size=8))
def test_snap_into_box_respects_float64_bounds(dims):
    lower = np.array([lo for lo, _, _ in dims])
    upper = np.array([lo + w for lo, w, _ in dims])
    x = lower + np.array([f for _, _, f in dims]) * (upper - lower)
    x32 = snap_into_box(x, lower, upper)
    assert x32.dtype == np.float32
    # a float32 point inside the box exists unless the box is narrower than float32 spacing
    up = np.float32(lower)
    up = np.where(up.astype(np.float64) < lower, np.nextafter(up, np.float32(np.inf)), up)
    representable = up.astype(np.float64) <= upper
    inside = (x32.astype(np.float64) >= lower) & (x32.astype(np.float64) <= upper)
    assert np.all(inside | ~representable)
