"""The homotopy and domain-constrained descents find violations that plain PGD has no gradient towards."""
from __future__ import annotations

import numpy as np
import torch

from tests.attack.test_pgd import relu_net
from verifier.attack.pgd import AttackConfig, box_descent, clause_objective, homotopy_leak, leaky_forward, pgd_attack
from verifier.model.graph import Graph, Node

DT = torch.float64


def hat_net(p: np.ndarray, K: float) -> Graph:
    """y = relu(1 - K |x - p|_1), built as relu(x - p) + relu(p - x) then one relu: 1 at p, and 0 with no
    gradient outside the L1 ball of radius 1/K."""
    n = p.shape[0]
    t = lambda a: torch.as_tensor(a, dtype=DT)  # noqa: E731
    return Graph(nodes=(
        Node("x", "input", (), (n,)),
        Node("abs", "linear", ("x",), (2 * n,), {"W": t(np.vstack([np.eye(n), -np.eye(n)])),
                                                   "b": t(np.concatenate([-p, p]))}),
        Node("r1", "relu", ("abs",), (2 * n,)),
        Node("hat", "linear", ("r1",), (1,), {"W": t(-K * np.ones((1, 2 * n))), "b": t(np.ones(1))}),
        Node("r2", "relu", ("hat",), (1,)),
        Node("out", "linear", ("r2",), (1,), {"W": t(np.ones((1, 1))), "b": t(np.zeros(1))}),
    ), input_name="x", output_name="out")


def test_leaky_forward_is_the_network_at_leak_0_and_affine_at_leak_1() -> None:
    rng = np.random.default_rng(0)
    w1, b1, w2, b2 = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=(2, 6)), rng.normal(size=2)
    g = relu_net(w1, b1, w2, b2)
    x = torch.as_tensor(rng.normal(size=(20, 3)), dtype=DT)
    assert torch.allclose(leaky_forward(g, x, torch.zeros(20, dtype=DT)), g.forward(x))
    affine = (x @ torch.as_tensor(w1.T) + torch.as_tensor(b1)) @ torch.as_tensor(w2.T) + torch.as_tensor(b2)
    assert torch.allclose(leaky_forward(g, x, torch.ones(20, dtype=DT)), affine)
    mixed = leaky_forward(g, x, torch.tensor([0.0, 1.0] * 10, dtype=DT))
    assert torch.allclose(mixed[0::2], g.forward(x)[0::2]) and torch.allclose(mixed[1::2], affine[1::2])


def test_homotopy_leak_schedule() -> None:
    assert homotopy_leak(0, 100) == 1.0 and homotopy_leak(80, 100) == 0.0 and homotopy_leak(100, 100) == 0.0
    assert homotopy_leak(30, 100, end=0.3) == 0.0 and 0 < homotopy_leak(15, 100, end=0.3) < 1


def test_homotopy_starts_find_a_bump_plain_starts_miss() -> None:
    p = np.array([0.31, -0.62, 0.47])
    g = hat_net(p, K=100.0)  # y >= 0.5 only within 0.005 of p (L1), in the box [-1, 1]^3
    lo, hi = -torch.ones(3, dtype=DT), torch.ones(3, dtype=DT)
    clause = (torch.tensor([[-1.0]], dtype=DT), torch.tensor([0.5], dtype=DT))
    (plain,) = pgd_attack(g, lo, hi, [clause], AttackConfig(restarts=64, steps=100, homotopy_restarts=0))
    assert plain.objective > 0  # no gradient outside the ball: plain PGD never gets there
    (found,) = pgd_attack(g, lo, hi, [clause], AttackConfig(restarts=8, steps=100, homotopy_restarts=8))
    assert found.objective <= 0
    assert float(clause_objective(g.forward(found.x[None]), clause[0][None], clause[1][None])) <= 0
    assert torch.all(found.x >= lo) and torch.all(found.x <= hi)


def test_penalty_on_split_decisions_walks_into_the_fenced_region() -> None:
    """A domain whose decision says "the hat's input is >= 0" holds only points of the L1 ball: descending
    the decisions' violation gets there from anywhere, where the clause alone has no gradient."""
    p = np.array([0.2, -0.4, 0.6, -0.1])
    g = hat_net(p, K=10.0)
    lo, hi = -torch.ones(1, 4, dtype=DT), torch.ones(1, 4, dtype=DT)
    C, d = torch.tensor([[-1.0]], dtype=DT), torch.tensor([0.9], dtype=DT)  # y >= 0.9: within 0.01 of p
    starts = lo + torch.rand((16, 4), generator=torch.Generator().manual_seed(0), dtype=DT) * (hi - lo)
    signs = {"hat": torch.ones((16, 1), dtype=torch.int8)}
    plain = box_descent(g, starts, lo, hi, C, d, 60)
    assert float(clause_objective(g.forward(plain), C.expand(16, -1, -1), d.expand(16, -1)).min()) > 0
    fenced = box_descent(g, starts, lo, hi, C, d, 60, penalty=(signs, 10.0))
    obj = clause_objective(g.forward(fenced), C.expand(16, -1, -1), d.expand(16, -1))
    assert float(obj.min()) <= 0
    assert torch.all(fenced >= lo) and torch.all(fenced <= hi)


def test_box_descent_keeps_each_start_in_its_own_box() -> None:
    g = hat_net(np.zeros(2), K=1.0)
    lo = torch.tensor([[-1.0, -1.0], [0.5, 0.5], [-0.2, 0.1]], dtype=DT)
    hi = lo + torch.tensor([[0.3, 0.3], [0.1, 0.4], [0.0, 0.2]], dtype=DT)  # the last one is flat in x0
    x = box_descent(g, (lo + hi) / 2, lo, hi, torch.tensor([[-1.0]], dtype=DT), torch.tensor([2.0], dtype=DT),
                    20, homotopy=True)
    assert torch.all(x >= lo) and torch.all(x <= hi)
