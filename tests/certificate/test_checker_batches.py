"""The checker's bound on a leaf must not depend on which other leaves share its batch.

CROWN's adaptive relu slopes are not monotone in the intermediate bounds: tightening a neuron that is
stable on one box (because it is unstable on another box of the batch) changed later slopes and
loosened that box's objective bound, so ACAS Xu 1_1 prop_5 had a leaf that the verifier proved alone
(and the checker too, alone) found "not proved" in a batch of 4000 leaves.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.bab.nets import random_net, write_onnx
from verifier.certificate.checker import leaf_margins
from verifier.certificate.network import Affine, load_chain


@pytest.mark.parametrize("seed", range(40))
def test_leaf_margins_alone_equal_margins_in_a_batch(seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    n_in, n_out = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    net = random_net(rng, n_in, [int(rng.integers(10, 30)) for _ in range(int(rng.integers(3, 6)))], n_out)
    chain = load_chain(str(write_onnx(net, tmp_path / "net.onnx")))
    centre = rng.uniform(-1, 1, (40, n_in))
    radius = 10.0 ** rng.uniform(-3, 0, (40, 1)) * rng.uniform(0.2, 1, (40, n_in))  # thin and wide boxes mixed
    lo, hi = centre - radius, centre + radius
    rows = int(rng.integers(1, 4))
    C = rng.normal(size=(rows, n_out))
    d = -(C @ net(centre[:1]).T)[:, 0] + rng.uniform(0.0, 0.5, rows)  # margins near 0: bounds matter
    objective = (Affine(C, d), Affine(np.eye(rows), np.zeros(rows)))
    together = leaf_margins(chain, objective, lo, hi)
    alone = np.array([leaf_margins(chain, objective, lo[i:i + 1], hi[i:i + 1])[0] for i in range(lo.shape[0])])
    assert np.allclose(together, alone, rtol=1e-9, atol=1e-12), np.max(np.abs(together - alone))
