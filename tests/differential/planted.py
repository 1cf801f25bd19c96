"""Planted counterexamples that attacks miss: a relu MLP whose output is negative only in a narrow L1 ball.

y(x) = base(x) + shift - H * hat(x) on [-1, 1]^n, where base is a random 2-layer relu MLP whose exact
minimum over the box (MILP) is lifted to `base_margin` > 0 by `shift`, and hat(x) = relu(1 - ||x - c||_1 / w)
is 1 at c and 0 outside the ball; H makes y(c) = -depth. So y < 0 only inside the ball around c, whose
share of the box is w^n / n!: uniform samples never land there, and PGD sees no gradient towards it
from outside. Layer 1 holds base's neurons and |x_i - c_i| as relu(x_i - c_i) + relu(c_i - x_i); layer 2
base's second layer and the hat; rows are shuffled so that nothing marks the bump apart.
"""
from __future__ import annotations

import numpy as np

from tests.differential.exact import milp_minimum
from tests.differential.networks import Layer, Net, float32_net, run_layers
from tests.differential.specs import Case


def planted_bump(rng: np.random.Generator, n_in: int, width: float, depth: float = 0.05,
                 base_margin: float = 0.2, hidden: int = 12) -> tuple[Net, np.ndarray]:
    """The net (float32-rounded parameters) and the centre c of its bump."""
    c = np.asarray(rng.uniform(-0.8, 0.8, size=n_in), dtype=np.float32).astype(np.float64)
    W1, b1 = rng.normal(size=(hidden, n_in)) / np.sqrt(n_in), rng.normal(size=hidden) * 0.3
    W2, b2 = rng.normal(size=(hidden, hidden)) / np.sqrt(hidden), rng.normal(size=hidden) * 0.3
    w3 = rng.normal(size=(1, hidden)) / np.sqrt(hidden)
    base = float32_net(Net((n_in,), [Layer("dense", W=W1, b=b1), Layer("act", fn="relu"),
                                     Layer("dense", W=W2, b=b2), Layer("act", fn="relu"),
                                     Layer("dense", W=w3, b=np.zeros(1))]))
    box = (-np.ones(n_in), np.ones(n_in))
    floor = milp_minimum(base, *box, np.eye(1), np.zeros(1), time_limit=60.0)
    assert floor is not None, "the base net's minimum was not found in time"
    shift = base_margin - floor.value
    H = float(base.forward(c[None, :])[0, 0]) + shift + depth
    eye = np.eye(n_in)
    L1W, L1b = np.vstack([base.layers[0].W, eye, -eye]), np.concatenate([base.layers[0].b, -c, c])
    L2W = np.zeros((hidden + 1, hidden + 2 * n_in))
    L2W[:hidden, :hidden] = base.layers[2].W
    L2W[hidden, hidden:] = -1.0 / width
    L2b = np.concatenate([base.layers[2].b, [1.0]])
    w_out = np.concatenate([base.layers[4].W[0], [-H]])[None, :]
    p1, p2 = rng.permutation(hidden + 2 * n_in), rng.permutation(hidden + 1)
    layers = [Layer("dense", W=L1W[p1], b=L1b[p1]), Layer("act", fn="relu"),
              Layer("dense", W=L2W[p2][:, p1], b=L2b[p2]), Layer("act", fn="relu"),
              Layer("dense", W=w_out[:, p2], b=np.array([shift]))]
    return float32_net(Net((n_in,), layers, f"bump{n_in}")), c


def bump_case(rng: np.random.Generator, n_in: int, width: float | None = None) -> Case:
    """A planted-bump case: x in [-1, 1]^n, violated where y <= 0; sat, with the centre as the known
    violating point (checked on the float32-rounded net). Default width: the ball covers under 1e-7 of
    the box (w^n / n! < 1e-7), capped at 0.5."""
    if width is None:
        from math import factorial

        width = min(0.5, (1e-7 * factorial(n_in)) ** (1.0 / n_in))
    net, centre = planted_bump(rng, n_in, width)
    value = float(net.forward(centre[None, :])[0, 0])
    assert value < 0, f"the planted centre does not violate (y = {value})"
    box = (-np.ones(n_in), np.ones(n_in))
    return Case(net, [box], [(np.array([[1.0]]), np.array([0.0]))], "sat", value, centre, False,
                kind=f"bump{n_in}")
