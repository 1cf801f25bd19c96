"""Small helpers shared by the bound interpreters: input boxes, objective matrices, concretisation."""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch

from verifier.bounds.ball import LpBall, ball_of, with_ball
from verifier.model.graph import Graph

Tensor = torch.Tensor
Box = tuple[Tensor, Tensor]


def input_box(graph: Graph, lower: Tensor, upper: Tensor, ball: Optional[LpBall] = None) -> Box:
    """The input box as (B, *graph.input_shape) tensors; flat (B, n_inputs) boxes are reshaped. With an
    Lp ball, the box carries it (`ball.BallBox`): the input set is then ball ∩ box."""
    if lower.shape != upper.shape:
        raise ValueError(f"lower {tuple(lower.shape)} and upper {tuple(upper.shape)} differ in shape")
    if lower.dim() < 1 or math.prod(lower.shape[1:]) != graph.n_inputs:
        raise ValueError(f"input box of shape {tuple(lower.shape)} does not hold batches of "
                         f"{graph.n_inputs} inputs")
    shape = (lower.shape[0],) + graph.input_shape
    return with_ball((lower.reshape(shape), upper.reshape(shape)), ball)


def on_device_of(graph: Graph, like: Tensor) -> Graph:
    """The graph with its floating parameters on like's device and dtype; the same graph if they are."""
    params = [p for n in graph.nodes for p in n.params.values() if p.is_floating_point()]
    if all(p.device == like.device and p.dtype == like.dtype for p in params):
        return graph
    return graph.to(like.device, like.dtype)


def objective_matrix(graph: Graph, C: Optional[Tensor], like: Tensor) -> Tensor:
    """C as (B or 1, k, *output_shape) in like's dtype/device; None means the identity over outputs.

    A (k, n_outputs) C is kept with batch dim 1 so that it broadcasts over the batch for free.
    """
    n = graph.n_outputs
    if C is None:
        C = torch.eye(n, dtype=like.dtype, device=like.device)
    C = C.to(dtype=like.dtype, device=like.device)
    if C.dim() == 2:
        C = C.unsqueeze(0)
    if C.dim() != 3 or C.shape[-1] != n or C.shape[0] not in (1, like.shape[0]):
        raise ValueError(f"objective matrix of shape {tuple(C.shape)} does not fit a batch of "
                         f"{like.shape[0]} with {n} outputs")
    return C.reshape(C.shape[:2] + graph.output_shape)


def concretize_lower(A: Tensor, box: Box) -> Tensor:
    """min over the box of sum(A * x) per batch element and row: A+ . l + A- . u, computed as
    A . l + A- . (u - l), one pass fewer over A (the largest tensor of CROWN, at the input).

    A is (B or 1, R, *s), the box tensors (B, *s); returns (B, R). A box that carries an Lp ball
    (`ball.BallBox`, the input set ball ∩ box) gets the larger of the box's and the ball's (dual norm)
    lower bound: both are sound for the intersection.
    """
    l, u = (t.flatten(1) for t in box)
    A = A.flatten(2)
    out = dot_rows(A, l) + dot_rows(A.clamp(max=0), u - l)
    ball = ball_of(box)
    if ball is not None:
        out = torch.maximum(out, ball.lower(A))
    return out.expand(l.shape[0], A.shape[1])


def dot_rows(A: Tensor, x: Tensor) -> Tensor:
    """(B or 1, R, n) . (B, n) -> (B, R), without expanding a batch-shared A to B copies."""
    if A.shape[0] == 1:
        return x @ A[0].T
    return (A @ x.unsqueeze(-1)).squeeze(-1)


def best_of(*boxes: Box) -> Box:
    """The intersection of several sound bounds on the same quantity (each still sound): the
    elementwise max of the lowers and min of the uppers."""
    lowers, uppers = zip(*boxes)
    return functools.reduce(torch.maximum, lowers), functools.reduce(torch.minimum, uppers)
