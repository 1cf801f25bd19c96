"""The contract every op's rules follow (see `verifier.bounds.ops` for what each part means), and
the small helpers the rule modules share. Kept apart from the registry so that rule modules can
import it without importing the registry that imports them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from verifier.model.graph import Node

Tensor = torch.Tensor
Box = tuple[Tensor, Tensor]
BackwardResult = tuple[list[Optional[Tensor]], Tensor]
BackwardRule = Callable[[Node, Tensor, Sequence[Optional[Box]], Optional[Tensor]], BackwardResult]


@dataclass(frozen=True)
class OpRule:
    forward: Callable[..., Tensor]  # forward(node, *input_values) -> output value, batched
    interval: Callable[..., Box]  # interval(node, *input_boxes) -> (lower, upper)
    backward: BackwardRule  # see the module docstring
    affine: bool = False  # backward is exact and ignores input_bounds and relax
    # exact_where(l, u) -> bool mask (B, *s) of the (single) input's neurons on which the relaxation
    # is already exact, so tightening their bounds cannot help; None: assume it never is.
    exact_where: Optional[Callable[[Tensor, Tensor], Tensor]] = None


def no_bias(A: Tensor) -> Tensor:
    return A.new_zeros(A.shape[:2])


def per_sample_sum(t: Tensor) -> Tensor:
    """Sum over the per-sample dims of a (B, R, *s) tensor -> (B, R)."""
    return t.flatten(2).sum(-1)
