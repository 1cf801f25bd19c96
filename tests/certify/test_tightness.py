"""IBP propagation tightness on a network small enough to work out on paper, and relu-state counts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from verifier.certify.network import Network, eps_box, margin_matrix
from verifier.certify.tightness import propagation_tightness, relu_state_counts, tightness_report
from verifier.errors import InputError
from verifier.model.graph import Graph, Node

D = torch.float64


def hand_net(W2: list[list[float]]) -> Graph:
    """x (2) -> W1 = [[1, 1], [1, -1]], b1 = 0 -> relu -> W2, b2 = 0."""
    W1 = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=D)
    W2t = torch.tensor(W2, dtype=D)
    return Graph((Node("x", "input", (), (2,)),
                  Node("fc1", "linear", ("x",), (2,), params={"W": W1, "b": torch.zeros(2, dtype=D)}),
                  Node("relu", "relu", ("fc1",), (2,)),
                  Node("fc2", "linear", ("relu",), (len(W2),), params={"W": W2t, "b": torch.zeros(len(W2), dtype=D)})),
                 "x", "fc2")


def _ratio(graph: Graph, x: list[float], eps: float, label: int, clip=None) -> np.ndarray:
    xs = np.array([x])
    lower, upper, _, _ = eps_box(xs, eps, clip, D, "cpu")
    C = margin_matrix([label], graph.n_outputs, D, "cpu")
    return propagation_tightness(graph, torch.as_tensor(xs), lower, upper, C)[0].numpy()


def test_tightness_worked_by_hand():
    """Two outputs, label 0, so one margin row c = e0 - e1 and c W2 = [1, 1] for W2 = [[1, 1], [0, 0]].

    At x = (1, 0.2) both relus are on (pre-activations 1.2, 0.8): c J = [1, 1] W1 = [2, 0].
    Radius r = (0.1, 0.1). Optimal box: |[2, 0]| r = 0.2. IBP: |c W2| |W1| r = [2, 2] r = 0.4. Ratio 1/2.

    At x = (0.2, 1) the second relu is off (pre-activation -0.8): D = diag(1, 0), c J = [1, 0] W1 = [1, 1].
    Optimal |[1, 1]| r = 0.2; IBP |[1, 0]| D... = [1, 0] |W1| r = [1, 1] r = 0.2. Ratio 1 (exact).

    Clipping to [0, 1] at x = (0.95, 0.5), eps 0.1: the box is [0.85, 1] x [0.4, 0.6], r = (0.075, 0.1);
    both relus on; optimal 2 * 0.075 = 0.15, IBP 2 * 0.075 + 2 * 0.1 = 0.35. Ratio 3/7.
    """
    net = hand_net([[1.0, 1.0], [0.0, 0.0]])
    assert _ratio(net, [1.0, 0.2], 0.1, 0) == pytest.approx([0.5])
    assert _ratio(net, [0.2, 1.0], 0.1, 0) == pytest.approx([1.0])
    assert _ratio(net, [0.95, 0.5], 0.1, 0, clip=(0.0, 1.0)) == pytest.approx([3 / 7])
    assert _ratio(net, [1.0, 0.2], 0.02, 0) == pytest.approx([0.5])  # without clipping: independent of eps


def test_tightness_per_margin_row_and_mean():
    """Three outputs, W2 = [[1, 1], [0, 0], [1, 0]], label 0: rows c1 = e0 - e1 -> c1 W2 = [1, 1] (ratio 1/2 as
    above at x = (1, 0.2)), c2 = e0 - e2 -> c2 W2 = [0, 1], c2 J = [0, 1] W1 = [1, -1]: optimal |1| r1 + |-1| r2
    = 0.2, IBP [0, 1] |W1| r = [1, 1] r = 0.2, ratio 1. The report's mean over rows is 3/4."""
    net = hand_net([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    assert _ratio(net, [1.0, 0.2], 0.1, 0) == pytest.approx([0.5, 1.0])
    fake = Network(model=None, graph=net, runner=None, device="cpu", dtype=D)  # type: ignore[arg-type]
    rep = tightness_report(fake, np.array([[1.0, 0.2]]), np.array([0]), 0.1, None, batch=8)
    assert rep["mean"] == pytest.approx(0.75) and rep["samples"] == 1


def test_relu_states_by_hand():
    """x = (0.5, 0.5), eps 0.2: pre-activations x1 + x2 in [0.6, 1.4] (active) and x1 - x2 in [-0.4, 0.4]
    (unstable for IBP; CROWN's bound of x1 - x2 is the same interval, exact for a linear function)."""
    net = hand_net([[1.0, 1.0], [0.0, 0.0]])
    lower, upper, _, _ = eps_box(np.array([[0.5, 0.5], [3.0, 0.5]]), 0.2, None, D, "cpu")
    C = margin_matrix([0, 0], 2, D, "cpu")
    counts = relu_state_counts(net, lower, upper, C)
    # second sample: x1 + x2 in [3.1, 3.9], x1 - x2 in [2.1, 2.9]: both active
    assert counts["ibp"]["relu"].tolist() == [3, 0, 1]  # active, inactive, unstable over the batch
    assert counts["crown"]["relu"].tolist() == [3, 0, 1]


def test_only_relu_networks():
    g = hand_net([[1.0, 1.0], [0.0, 0.0]])
    nodes = tuple(Node(n.name, "sigmoid", n.inputs, n.shape) if n.op == "relu" else n for n in g.nodes)
    with pytest.raises(InputError, match="only relu networks can be linearised, this one has sigmoid"):
        _ratio(Graph(nodes, "x", "fc2"), [1.0, 0.2], 0.1, 0)
