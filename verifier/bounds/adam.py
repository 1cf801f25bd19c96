"""Adam for the relaxation parameters (alpha, beta), without `torch.optim`.

Constructing any `torch.optim` optimiser imports `torch._dynamo` (1.6 s on these machines): more than
the whole of an easy ACAS Xu instance, and paid by every process that optimises a bound once. The
update is torch's Adam (default betas and eps, no weight decay), with an optional exponential decay
of the step sizes after every step (as torch's ExponentialLR).

The step runs torch's fused Adam kernel (`torch._fused_adam_`, what `Adam(fused=True)` calls; CPU
support since torch 2.4) where it accepts the tensors: one pass over each parameter instead of six
elementwise ones with a fresh tensor for the square root (1.9 ms instead of 4.0 on a (256, 100, 50)
slope tensor, one thread; Adam steps were 6% of an ACAS Xu input-split search). Elsewhere the same
update in plain tensor ops.
Which one runs changes no bound's soundness: any slopes in [0, 1] and any beta >= 0 give sound bounds.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

Tensor = torch.Tensor

_FUSED: Optional[Callable[..., None]] = getattr(torch, "_fused_adam_", None)


class Adam:
    """Minimises through `.grad` of the given tensors: `groups` are (parameters, learning rate)."""

    def __init__(self, groups: Sequence[tuple[Sequence[Tensor], float]], decay: float = 1.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, fused: bool = True) -> None:
        self.groups = [(list(params), float(lr)) for params, lr in groups]
        self.decay, self.betas, self.eps = decay, betas, eps
        self.steps = 0
        self.moments: dict[int, tuple[Tensor, Tensor]] = {}
        self.fused = fused and _FUSED is not None

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        scale = self.decay ** (self.steps - 1)
        for params, lr in self.groups:
            for p in params:
                if p.grad is None:
                    continue
                m, v = self.moments.setdefault(id(p), (torch.zeros_like(p), torch.zeros_like(p)))
                if not (self.fused and self._fused_step(p, m, v, lr * scale)):
                    self._plain_step(p, m, v, lr * scale)

    def _fused_step(self, p: Tensor, m: Tensor, v: Tensor, lr: float) -> bool:
        """One step by torch's fused kernel; False (nothing changed) where it refuses these tensors."""
        b1, b2 = self.betas
        step = torch.full((), float(self.steps), dtype=torch.float32, device=p.device)
        try:
            _FUSED([p], [p.grad], [m], [v], [], [step],  # type: ignore[misc]
                   lr=lr, beta1=b1, beta2=b2, weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)
        except (RuntimeError, NotImplementedError, TypeError):  # a device, dtype or torch version without it
            self.fused = False
            return False
        return True

    def _plain_step(self, p: Tensor, m: Tensor, v: Tensor, lr: float) -> None:
        """torch's Adam update, with the bias corrections folded into the step size and the epsilon."""
        b1, b2 = self.betas
        correction1, root2 = 1 - b1 ** self.steps, math.sqrt(1 - b2 ** self.steps)
        g = p.grad
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = v.sqrt().add_(self.eps * root2)
        p.addcdiv_(m, denom, value=-lr * root2 / correction1)
