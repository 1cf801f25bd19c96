"""Rules for the affine ops that combine or rearrange computed tensors.

"add":       y = x_1 + x_2 + ...; every input has the output's per-sample shape (residual connections:
             the backward interpreter sums the coefficients reaching a node over all its consumers).
"concat":    attrs axis (a per-sample dim), sizes (each input's extent along it).
"transpose": attrs perm, a permutation of the per-sample dims.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from verifier.bounds.rule import BackwardResult, Box, OpRule, Tensor, no_bias
from verifier.model.graph import Node


def _add(node: Node, *xs: Tensor) -> Tensor:
    return sum(xs[1:], xs[0])


def _add_interval(node: Node, *boxes: Box) -> Box:
    return _add(node, *(b[0] for b in boxes)), _add(node, *(b[1] for b in boxes))


def _add_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                  relax: Optional[Tensor]) -> BackwardResult:
    return [A] * len(node.inputs), no_bias(A)


def _concat(node: Node, *xs: Tensor) -> Tensor:
    return torch.cat(xs, dim=1 + int(node.attrs["axis"]))


def _concat_interval(node: Node, *boxes: Box) -> Box:
    return _concat(node, *(b[0] for b in boxes)), _concat(node, *(b[1] for b in boxes))


def _concat_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                     relax: Optional[Tensor]) -> BackwardResult:
    parts = torch.split(A, [int(s) for s in node.attrs["sizes"]], dim=2 + int(node.attrs["axis"]))
    return list(parts), no_bias(A)


def _transpose(node: Node, x: Tensor) -> Tensor:
    return x.permute((0,) + tuple(1 + int(p) for p in node.attrs["perm"]))


def _transpose_interval(node: Node, box: Box) -> Box:
    return _transpose(node, box[0]), _transpose(node, box[1])


def _transpose_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                        relax: Optional[Tensor]) -> BackwardResult:
    perm = [int(p) for p in node.attrs["perm"]]
    inverse = sorted(range(len(perm)), key=perm.__getitem__)
    return [A.permute((0, 1) + tuple(2 + i for i in inverse))], no_bias(A)


TENSOR_OPS: dict[str, OpRule] = {
    "add": OpRule(forward=_add, interval=_add_interval, backward=_add_backward, affine=True),
    "concat": OpRule(forward=_concat, interval=_concat_interval, backward=_concat_backward, affine=True),
    "transpose": OpRule(forward=_transpose, interval=_transpose_interval, backward=_transpose_backward,
                        affine=True),
}
