"""Adam for the relaxation parameters (alpha, beta), without `torch.optim`.

Constructing any `torch.optim` optimiser imports `torch._dynamo` (1.6 s on these machines): more than
the whole of an easy ACAS Xu instance, and paid by every process that optimises a bound once. The
update is torch's Adam (default betas and eps, no weight decay), with an optional exponential decay
of the step sizes after every step (as torch's ExponentialLR).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

Tensor = torch.Tensor


class Adam:
    """Minimises through `.grad` of the given tensors: `groups` are (parameters, learning rate)."""

    def __init__(self, groups: Sequence[tuple[Sequence[Tensor], float]], decay: float = 1.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.groups = [(list(params), float(lr)) for params, lr in groups]
        self.decay, self.betas, self.eps = decay, betas, eps
        self.steps = 0
        self.moments: dict[int, tuple[Tensor, Tensor]] = {}

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        scale = self.decay ** (self.steps - 1)
        for params, lr in self.groups:
            for p in params:
                if p.grad is None:
                    continue
                m, v = self.moments.setdefault(id(p), (torch.zeros_like(p), torch.zeros_like(p)))
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v.sqrt() / math.sqrt(correction2)).add_(self.eps)
                p.addcdiv_(m, denom, value=-lr * scale / correction1)
