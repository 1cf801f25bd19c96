"""Our Adam follows torch's Adam (with ExponentialLR) step for step, and needs no torch._dynamo."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from verifier.bounds.adam import Adam


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("decay", [1.0, 0.98])
def test_steps_match_torch_adam(decay: float, fused: bool) -> None:
    """Both ways of stepping (torch's fused kernel, plain tensor ops) follow torch.optim.Adam."""
    gen = torch.Generator().manual_seed(0)
    target = [torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)]
    ours = [torch.zeros_like(t, requires_grad=True) for t in target]
    theirs = [torch.zeros_like(t, requires_grad=True) for t in target]
    opt = Adam([([ours[0]], 0.1), ([ours[1]], 0.3)], decay=decay, fused=fused)
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


@pytest.mark.parametrize("fused", [True, False])
def test_parameters_without_gradient_stay_put(fused: bool) -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = Adam([([a, b], 0.5)], fused=fused)
    (a * 3).sum().backward()
    opt.step()
    assert torch.equal(b, torch.ones(2)) and bool((a < 1).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_and_plain_steps_agree(dtype: torch.dtype) -> None:
    """The kernel runs where torch has it (CPU since 2.4), and gives the plain update's values on the
    shapes the engines step (batch x rows x neurons slopes, float32 search and float64 recheck)."""
    gen = torch.Generator().manual_seed(1)
    start = torch.rand(8, 6, 5, generator=gen, dtype=dtype)
    grads = [torch.randn(8, 6, 5, generator=gen, dtype=dtype) for _ in range(12)]
    runs = []
    for fused in (True, False):
        p = start.clone().requires_grad_(True)
        opt = Adam([([p], 0.1)], decay=0.97, fused=fused)
        for g in grads:
            p.grad = g.clone()
            opt.step()
        runs.append((p.detach(), opt.fused))
    assert runs[0][1] == hasattr(torch, "_fused_adam_")  # the kernel took these tensors, if torch has it
    assert not runs[1][1]
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=tol, atol=tol)


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
