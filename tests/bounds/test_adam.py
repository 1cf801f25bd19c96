"""Our Adam follows torch's Adam (with ExponentialLR) step for step, and needs no torch._dynamo."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from verifier.bounds.adam import Adam


@pytest.mark.parametrize("decay", [1.0, 0.98])
def test_steps_match_torch_adam(decay: float) -> None:
    gen = torch.Generator().manual_seed(0)
    target = [torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)]
    ours = [torch.zeros_like(t, requires_grad=True) for t in target]
    theirs = [torch.zeros_like(t, requires_grad=True) for t in target]
    opt = Adam([([ours[0]], 0.1), ([ours[1]], 0.3)], decay=decay)
    ref = torch.optim.Adam([{"params": [theirs[0]], "lr": 0.1}, {"params": [theirs[1]], "lr": 0.3}])
    sched = torch.optim.lr_scheduler.ExponentialLR(ref, decay)
    for _ in range(25):
        for params, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            sum(((p - t) ** 4).sum() for p, t in zip(params, target)).backward()
            o.step()
        sched.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert all(float((p.detach() - t).abs().max()) < float(t.abs().max()) for p, t in zip(ours, target))


def test_parameters_without_gradient_stay_put() -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = Adam([([a, b], 0.5)])
    (a * 3).sum().backward()
    opt.step()
    assert torch.equal(b, torch.ones(2)) and bool((a < 1).all())


def test_alpha_crown_does_not_import_dynamo() -> None:
    """Optimising a bound must not pull in torch._dynamo (1.6 s of start-up)."""
    code = (
        "import sys, torch\n"
        "from verifier.bounds.alpha import alpha_crown\n"
        "from tests.bounds.graphs import GraphBuilder\n"
        "b = GraphBuilder(torch.Generator().manual_seed(0))\n"
        "x = b.add('input', (), (3,))\n"
        "g = b.graph(b.linear(b.relu(b.linear(b.relu(b.linear(x, 4)), 4)), 2))\n"
        "alpha_crown(g, -torch.ones(1, 3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64),"
        " torch.eye(2, dtype=torch.float64))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
