"""Soundness of the checker's own arithmetic: every bound it computes must contain the network's
values at sampled points, corners and the oracle's minimiser, whatever slopes and weights it is given."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bab.nets import exact_min, random_net
from verifier.certificate.checker import _backward, _crown_intermediate, _ibp, _slopes, leaf_margins
from verifier.certificate.network import Affine, Chain, Relu
from verifier.certificate.rigorous import LinearBound


def chain_of(net) -> Chain:  # type: ignore[no-untyped-def]
    layers: list = []
    for i, (W, b) in enumerate(net.layers):
        layers.append(Affine(np.asarray(W, np.float64), np.asarray(b, np.float64)))
        if i < len(net.layers) - 1:
            layers.append(Relu(W.shape[0]))
    return Chain(tuple(layers), net.n_in, net.n_out)


def values(layers, x: np.ndarray) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    out = [x]
    for layer in layers:
        out.append(out[-1] @ layer.W.T + layer.b if isinstance(layer, Affine) else np.maximum(out[-1], 0))
    return out


def points(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, k: int = 300) -> np.ndarray:
    """Uniform points, and every corner of the box."""
    n = lo.shape[0]
    corners = np.array([[hi[i] if (c >> i) & 1 else lo[i] for i in range(n)] for c in range(2 ** n)])
    return np.concatenate([rng.uniform(lo, hi, size=(k, n)), corners])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(1, 3), depth=st.integers(1, 3), scale=st.sampled_from([0.1, 1.0, 30.0]))
def test_intervals_and_linear_bounds_contain_sampled_values(seed: int, n_in: int, depth: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    net = random_net(rng, n_in, [6] * depth, 3)
    chain = chain_of(net)
    lo = rng.normal(size=n_in) * scale
    hi = lo + rng.uniform(0.01, 1.0, size=n_in) * scale
    xs = points(rng, lo, hi)
    vals = values(chain.layers, xs)
    L, H = lo[None], hi[None]
    for bounds in (_ibp(chain.layers, L, H), _crown_intermediate(chain.layers, L, H, ("adaptive", "zero", "upper"))):
        for (bl, bh), v in zip(bounds, vals):
            assert np.all(v >= bl[0]) and np.all(v <= bh[0])
    rows = rng.normal(size=(4, 3))
    objective = vals[-1] @ rows.T
    full = chain.layers + (Affine(rows, np.zeros(4)),)
    tight = _crown_intermediate(full, L, H)
    for strategy in ("adaptive", "zero", "upper"):
        lin = _backward(full, tight, len(full), np.eye(4), _slopes(full, tight, len(full), strategy))
        assert np.all(objective >= lin.box_minimum(L, H)[0])
    # any slopes, even outside [0, 1], give a sound bound (the offsets are computed, not assumed)
    wild = [rng.uniform(-2, 3, size=(1, 4, w)) for w in chain.relu_widths]
    lin = _backward(full, tight, len(full), np.eye(4), wild)
    assert np.all(objective >= lin.box_minimum(L, H)[0])
    # a weighting of the rows
    w = rng.uniform(0, 1, size=(1, 4))
    comb = lin.combined(w, np.maximum(np.abs(L), np.abs(H))).box_minimum(L, H)[0, 0]
    assert np.all(objective @ w[0] >= comb)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(1, 3))
def test_leaf_margin_is_below_the_exact_minimum(seed: int, n_in: int) -> None:
    """The checker's margin of a box never exceeds the true min over the box of max_i (C_i f + d_i)."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, n_in, [5, 5], 2)
    chain = chain_of(net)
    lo = rng.uniform(-1, 0, size=n_in)
    hi = lo + rng.uniform(0.05, 1.0, size=n_in)
    C, d = rng.normal(size=(2, 2)), rng.normal(size=2)
    truth, _ = exact_min(net, lo, hi, C, d)
    mix = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    margin = leaf_margins(chain, (Affine(C, d), Affine(mix, np.zeros(3))), lo[None], hi[None])
    # a bound, when it has one; proved (margin > 0, or inf from emptiness by clipping) only if true
    assert margin[0] <= truth + 1e-12 or (np.isinf(margin[0]) and truth > 0)
    shifted = leaf_margins(chain, (Affine(C, d - truth), Affine(mix, np.zeros(3))), lo[None], hi[None])
    assert not shifted[0] > 1e-12  # the true minimum is 0 there: nothing may prove it


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 3), rows=st.integers(1, 4))
def test_clip_empty_only_when_no_point_meets_every_row(seed: int, n: int, rows: int) -> None:
    from verifier.certificate.checker import clip_empty

    rng = np.random.default_rng(seed)
    lo = rng.uniform(-1, 0, size=(1, n))
    hi = lo + rng.uniform(0.01, 1, size=(1, n))
    lin = LinearBound(rng.normal(size=(1, rows, n)), rng.normal(size=(1, rows)) * 0.5, np.zeros((1, rows)))
    if clip_empty(lin, lo, hi)[0]:
        xs = points(rng, lo[0], hi[0], 2000)
        values = np.einsum("rn,kn->kr", lin.coef[0], xs) + lin.const[0]
        assert np.all(values.max(1) > 0)


def test_rounding_is_accounted_for() -> None:
    """A bound that is exactly 0 in real arithmetic must not come out positive."""
    lin = LinearBound(np.array([[[1.0, -1.0]]]), np.array([[0.0]]), np.array([[0.0]]))
    lo, hi = np.array([[0.1, 0.1]]), np.array([[0.1, 0.1]])
    assert lin.box_minimum(lo, hi)[0, 0] < 0.0
