"""Pre-activation bounds of every relu layer, computed layer by layer: IBP, tightened by CROWN on the
unstable neurons, optionally further by alpha-CROWN (slopes of the earlier relus optimised per bound).

Shared by the two branch-and-bound drivers: ReLU splitting (with split decisions clamped in, and the
bounds of layers before the newest split reused from the parent) and input splitting (on boxes
whose CROWN bound alone leaves them open: on steep networks the intermediate bounds are what is loose).
"""
from __future__ import annotations

import time
from typing import Optional

import torch

from verifier.bounds.adam import Adam
from verifier.bounds.backward import bound_rows
from verifier.bounds.ball import LpBall
from verifier.bounds.box import Box, input_box
from verifier.bounds.crown import tighten_where, unit_rows
from verifier.bounds.ibp import propagate_intervals
from verifier.bounds.ops import default_relu_alpha
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor


class DeadlinePassed(Exception):
    """`layer_bounds` was given a `deadline` and it passed before the bounds were done."""


def layer_bounds(graph: Graph, xl: Tensor, xu: Tensor, layers: list[str], stored: Optional[dict[str, Box]],
                  start: int, signs: Optional[dict[str, Tensor]],
                  optimise: Optional[tuple[int, float, float]] = None,
                  ball: Optional[LpBall] = None, deadline: Optional[float] = None) -> dict[str, Box]:
    """Pre-activation bounds of every relu input node, layer by layer: those of layers <= start taken
    from `stored`, the others the IBP box (of the refined boxes before them) tightened by CROWN on its
    unstable neurons and intersected with `stored` (when given). With `signs`, the split decisions are
    applied by clamping (active: lower >= 0, inactive: upper <= 0). optimise = (iterations, lr,
    deadline): then tighten each layer's unstable neurons further by alpha-CROWN (Adam on the lower
    slopes of the relus before it, one set per bound). With `ball` (one per batch row) the input set is
    ball ∩ box, and every backward pass is concretised over both (`box.concretize_lower`). With
    `deadline` (a time.monotonic() value), `DeadlinePassed` is raised if it passes before a layer is
    tightened: on a ResNet in float64 one domain's layers take seconds each, for callers that would
    rather give up than overrun."""
    pos = {name: i for i, name in enumerate(layers)}

    def refine(node: Node, ibp_box: Box, boxes: dict[str, Box]) -> Box:
        i = pos.get(node.name)
        if i is None:
            return ibp_box
        if stored is not None and i <= start:
            return stored[node.name]
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlinePassed(node.name)
        l, u = ibp_box
        if stored is not None:
            l, u = torch.maximum(l, stored[node.name][0]), torch.minimum(u, stored[node.name][1])
        if signs is not None:
            l, u = clamp_to_splits(l, u, signs[node.name])
        with torch.no_grad():
            l, u = crown_tighten(graph, node, (l, u), boxes)
        if optimise is not None and optimise[0] > 0:
            l, u = alpha_tighten(graph, node, (l, u), boxes, *optimise)
        if signs is not None:
            l, u = clamp_to_splits(l, u, signs[node.name])
        return l, u

    boxes = propagate_intervals(graph, input_box(graph, xl, xu, ball), refine)
    return {name: boxes[name] for name in layers}


def alpha_tighten(graph: Graph, node: Node, box: Box, boxes: dict[str, Box], iterations: int, lr: float,
                   deadline: float) -> Box:
    """box intersected with alpha-CROWN bounds of its unstable neurons: the lower slopes of every relu
    before `node` are optimised per bound (row) by Adam, the best bound per row over all iterates kept
    (every slope in [0, 1] gives a sound bound)."""
    l, u = (t.flatten(1) for t in box)
    loose = (l < 0) & (u > 0)
    rows = loose.any(0).nonzero().flatten()
    order = [n.name for n in graph.nodes]
    relus = [n for n in graph.nodes[: order.index(node.name)] if n.op == "relu" and n.inputs[0] in boxes]
    if rows.numel() == 0 or not relus:
        return box
    R = rows.numel()
    alphas = {}
    for relu in relus:
        a = default_relu_alpha(*boxes[relu.inputs[0]]).unsqueeze(1)  # (B, 1, *s)
        alphas[relu.name] = a.expand((a.shape[0], 2 * R) + a.shape[2:]).clone().requires_grad_(True)
    eye = unit_rows(rows, l.shape[1], l).reshape((1, R) + node.shape)
    take = loose[:, rows]
    best_l, best_u = l[:, rows].clone(), u[:, rows].clone()
    opt = Adam([(list(alphas.values()), lr)])
    for it in range(iterations):
        if time.monotonic() > deadline:
            break
        lb, ub = bound_rows(graph, node.name, eye, boxes, {graph.input_name}, alphas)
        with torch.no_grad():
            best_l = torch.where(take, torch.maximum(best_l, lb), best_l)
            best_u = torch.where(take, torch.minimum(best_u, ub), best_u)
        if it == iterations - 1:
            break
        opt.zero_grad()
        (ub - lb).sum().backward()
        opt.step()
        with torch.no_grad():
            for a in alphas.values():
                a.clamp_(0.0, 1.0)
    l, u = l.index_copy(1, rows, best_l), u.index_copy(1, rows, best_u)
    return l.reshape(box[0].shape), u.reshape(box[1].shape)


def clamp_to_splits(l: Tensor, u: Tensor, sign: Tensor) -> Box:
    return torch.where(sign > 0, l.clamp(min=0), l), torch.where(sign < 0, u.clamp(max=0), u)


def crown_tighten(graph: Graph, node: Node, box: Box, boxes: dict[str, Box]) -> Box:
    """box intersected with CROWN bounds on its unstable neurons (those of any domain of the batch; each
    domain takes the new bounds only where it is unstable itself, so batching never changes a bound)."""
    return tighten_where(graph, node, box, boxes, (box[0] < 0) & (box[1] > 0))
