"""Interval bound propagation: a sound box for every node, and a tight box for a linear objective."""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from verifier.bounds.backward import bound_rows, rule_for
from verifier.bounds.ball import LpBall, is_box_norm
from verifier.bounds.box import Box, best_of, input_box, objective_matrix, on_device_of
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor
Refine = Callable[[Node, Box, dict[str, Box]], Box]


def propagate_intervals(graph: Graph, box: Box, refine: Optional[Refine] = None) -> dict[str, Box]:
    """Every node's box, in topological order, from the input box (B, *input_shape).

    `refine(node, ibp_box, boxes_so_far)` may replace each node's box by a tighter sound one before
    its consumers use it (CROWN plugs its intermediate bounds in here).
    """
    boxes: dict[str, Box] = {graph.input_name: box}
    for node in graph.nodes:
        if node.op == "input":
            continue
        node_box = rule_for(node).interval(node, *(boxes[i] for i in node.inputs))
        boxes[node.name] = node_box if refine is None else refine(node, node_box, boxes)
    return boxes


def ibp(graph: Graph, lower: Tensor, upper: Tensor, ball: Optional[LpBall] = None) -> dict[str, Box]:
    """Per-node intervals (l, u), each (B, *node.shape), for inputs in [lower, upper] (∩ `ball`).

    lower/upper are (B, *graph.input_shape) or flat (B, n_inputs); the result follows their dtype/device.
    With an L1/L2 ball the first layer (see `ball_first_layer`) is bounded exactly over the ball.
    """
    graph = on_device_of(graph, lower)
    return propagate_intervals(graph, input_box(graph, lower, upper, ball), ball_first_layer(graph, ball))


def ibp_objective(graph: Graph, lower: Tensor, upper: Tensor, C: Optional[Tensor] = None,
                  ball: Optional[LpBall] = None) -> Box:
    """Bounds (B, k) of C @ y, C (k, n_outputs) or (B, k, n_outputs), None = identity.

    Tighter than applying C to the output box: C is folded exactly through the trailing affine ops
    (interval of (C W) x + C b for a last linear layer) down to the outputs of non-affine nodes and the
    input, and only there concretised against their IBP boxes (the input against box ∩ `ball`).
    """
    graph = on_device_of(graph, lower)
    boxes = propagate_intervals(graph, input_box(graph, lower, upper, ball), ball_first_layer(graph, ball))
    leaves = {n.name for n in graph.nodes if n.op == "input" or not rule_for(n).affine}
    return bound_rows(graph, graph.output_name, objective_matrix(graph, C, lower), boxes, leaves)


# Rows of one backward pass of the first layer's exact bounds, times the batch, at most this many elements.
FIRST_LAYER_PASS_ELEMENTS = 1 << 24


def ball_first_layer(graph: Graph, ball: Optional[LpBall]) -> Optional[Refine]:
    """IBP over an L1/L2 ball: the inputs of non-affine nodes that are affine functions of the input alone
    (the first layer's pre-activations, normalisation and flattening included) get their exact bounds over
    the ball by the dual norm, c·x ± eps ||row||_q, intersected with their box (the ball's bounding box
    would lose a factor of up to sqrt(n) there). None for L-inf (the box is exact) or no ball."""
    if is_box_norm(ball):
        return None
    affine = {graph.input_name}
    for node in graph.nodes:
        if node.op != "input" and rule_for(node).affine and all(i in affine for i in node.inputs):
            affine.add(node.name)
    first = {i for n in graph.nodes if n.op != "input" and not rule_for(n).affine for i in n.inputs} & affine
    first.discard(graph.input_name)

    def refine(node: Node, box: Box, boxes: dict[str, Box]) -> Box:
        if node.name not in first:
            return box
        return best_of(box, _exact_affine(graph, node, boxes))

    return refine


def _exact_affine(graph: Graph, node: Node, boxes: dict[str, Box]) -> Box:
    """Bounds of every neuron of an affine-of-the-input node by backward passes of unit rows to the input
    (concretised over the input set, ball included), in chunks."""
    like = boxes[graph.input_name][0]
    n = math.prod(node.shape)
    chunk = max(1, FIRST_LAYER_PASS_ELEMENTS // (like.shape[0] * max(n, graph.n_inputs)))
    lows, ups = [], []
    for part in torch.arange(n, device=like.device).split(chunk):
        E = torch.zeros((part.numel(), n), dtype=like.dtype, device=like.device)
        E[torch.arange(part.numel(), device=like.device), part] = 1
        lb, ub = bound_rows(graph, node.name, E.reshape((1, part.numel()) + node.shape), boxes, {graph.input_name})
        lows.append(lb)
        ups.append(ub)
    shape = (like.shape[0],) + node.shape
    return torch.cat(lows, dim=1).reshape(shape), torch.cat(ups, dim=1).reshape(shape)
