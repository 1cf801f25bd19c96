"""Forward linear bounds (symbolic intervals): each node bounded by linear functions of the input.

    lw · x + lb  <=  node(x)  <=  uw · x + ub     for x in the input box,

with lw/uw of shape (B, n_inputs, *node.shape). The cost grows with the number of inputs rather than
the width of the layers, so for networks with few inputs (ACAS Xu: 5) it gives intermediate bounds
far more cheaply than CROWN's backward pass per layer; input-split branch and bound uses it to bound
thousands of boxes per batch, with one backward CROWN pass for the objective on top.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from verifier.bounds.box import Box, input_box, on_device_of
from verifier.bounds.ibp import propagate_intervals
from verifier.bounds.ops import relu_box_relaxation
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor


@dataclass(frozen=True)
class LinearBounds:
    lw: Tensor  # (B, n0, *s)
    lb: Tensor  # (B, *s)
    uw: Tensor
    ub: Tensor

    def concretize(self, box: Box) -> Box:
        """The interval of the node over the box: min of the lower function, max of the upper."""
        l, u = (t.flatten(1) for t in box)  # (B, n0)
        shape = (l.shape[0], l.shape[1]) + (1,) * (self.lw.dim() - 2)
        l, u = l.reshape(shape), u.reshape(shape)
        lower = (self.lw.clamp(min=0) * l + self.lw.clamp(max=0) * u).sum(1) + self.lb
        upper = (self.uw.clamp(min=0) * u + self.uw.clamp(max=0) * l).sum(1) + self.ub
        return lower, upper


def _affine_pair(pos: Callable[[Tensor], Tensor], neg: Callable[[Tensor], Tensor], bias: Tensor | float,
                 x: LinearBounds, with_n0: Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]) -> LinearBounds:
    """y = M x + c with M split into its positive part `pos` and negative part `neg`."""
    return LinearBounds(
        lw=with_n0(pos, x.lw) + with_n0(neg, x.uw), lb=pos(x.lb) + neg(x.ub) + bias,
        uw=with_n0(pos, x.uw) + with_n0(neg, x.lw), ub=pos(x.ub) + neg(x.lb) + bias,
    )


def _keep_n0(fn: Callable[[Tensor], Tensor], w: Tensor) -> Tensor:
    """Apply a per-sample map to coefficient tensors (B, n0, *s) by folding n0 into the batch."""
    b, n0 = w.shape[:2]
    out = fn(w.reshape((b * n0,) + w.shape[2:]))
    return out.reshape((b, n0) + out.shape[1:])


def _linear(node: Node, x: LinearBounds, box: Box | None) -> LinearBounds:
    W, b = node.params["W"], node.params["b"]
    Wp, Wn = W.clamp(min=0).T, W.clamp(max=0).T
    return _affine_pair(lambda t: t @ Wp, lambda t: t @ Wn, b, x, lambda f, w: f(w))


def _scale_shift(node: Node, x: LinearBounds, box: Box | None) -> LinearBounds:
    s, c = node.params["scale"], node.params["shift"]
    sp, sn = s.clamp(min=0), s.clamp(max=0)
    return _affine_pair(lambda t: t * sp, lambda t: t * sn, c, x, _keep_n0)


def _reshape(node: Node, x: LinearBounds, box: Box | None) -> LinearBounds:
    shape = tuple(node.attrs["shape"])
    b, n0 = x.lw.shape[:2]
    return LinearBounds(x.lw.reshape((b, n0) + shape), x.lb.reshape((b,) + shape),
                        x.uw.reshape((b, n0) + shape), x.ub.reshape((b,) + shape))


def _relu(node: Node, x: LinearBounds, box: Box | None) -> LinearBounds:
    assert box is not None
    low, up, up_bias = (t.squeeze(1) for t in relu_box_relaxation(box, None))  # (B, *s)
    return LinearBounds(x.lw * low.unsqueeze(1), x.lb * low, x.uw * up.unsqueeze(1), x.ub * up + up_bias)


FORWARD_RULES: Mapping[str, Callable[[Node, LinearBounds, Box | None], LinearBounds]] = {
    "linear": _linear,
    "scale_shift": _scale_shift,
    "reshape": _reshape,
    "relu": _relu,
}


def supports_forward(graph: Graph) -> bool:
    return all(n.op == "input" or (n.op in FORWARD_RULES and len(n.inputs) == 1) for n in graph.nodes)


class ForwardPass:
    """Forward linear bounds built node by node alongside another interpreter's boxes.

    Each node's linear bounds are pushed through the relaxations of the *given* boxes of its input
    (CROWN's tightened ones, say), so they are tighter than a forward pass on its own, and `tighten`
    intersects them with a sound box. Cheap when the input has few dims (see the module doc).
    """

    def __init__(self, graph: Graph, box: Box) -> None:
        B, n0 = box[0].shape[0], graph.n_inputs
        eye = torch.eye(n0, dtype=box[0].dtype, device=box[0].device).reshape((1, n0) + graph.input_shape)
        eye = eye.expand(B, -1, *graph.input_shape)
        zero = torch.zeros_like(box[0])
        self.box = box
        self.lin: dict[str, LinearBounds] = {graph.input_name: LinearBounds(eye, zero, eye, zero)}

    def tighten(self, node: Node, sound: Box, boxes: Mapping[str, Box]) -> Box:
        """`sound` (a box of node) intersected with node's forward bounds; boxes: its input's box."""
        (src,) = node.inputs
        self.lin[node.name] = FORWARD_RULES[node.op](node, self.lin[src], boxes[src])
        fl, fu = self.lin[node.name].concretize(self.box)
        return torch.maximum(sound[0], fl), torch.minimum(sound[1], fu)


def forward_boxes(graph: Graph, lower: Tensor, upper: Tensor) -> dict[str, Box]:
    """A sound box for every node: forward linear bounds concretised, intersected with IBP's box."""
    graph = on_device_of(graph, lower)
    box = input_box(graph, lower, upper)
    forward = ForwardPass(graph, box)
    return propagate_intervals(graph, box, forward.tighten)
