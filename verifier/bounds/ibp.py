"""Interval bound propagation: a sound box for every node, and a tight box for a linear objective."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from verifier.bounds.backward import bound_rows, rule_for
from verifier.bounds.box import Box, input_box, objective_matrix, on_device_of
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


def ibp(graph: Graph, lower: Tensor, upper: Tensor) -> dict[str, Box]:
    """Per-node intervals (l, u), each (B, *node.shape), for inputs in [lower, upper].

    lower/upper are (B, *graph.input_shape) or flat (B, n_inputs); the result follows their dtype/device.
    """
    graph = on_device_of(graph, lower)
    return propagate_intervals(graph, input_box(graph, lower, upper))


def ibp_objective(graph: Graph, lower: Tensor, upper: Tensor, C: Optional[Tensor] = None) -> Box:
    """Bounds (B, k) of C @ y, C (k, n_outputs) or (B, k, n_outputs), None = identity.

    Tighter than applying C to the output box: C is folded exactly through the trailing affine ops
    (interval of (C W) x + C b for a last linear layer) down to the outputs of non-affine nodes and the
    input, and only there concretised against their IBP boxes.
    """
    graph = on_device_of(graph, lower)
    boxes = propagate_intervals(graph, input_box(graph, lower, upper))
    leaves = {n.name for n in graph.nodes if n.op == "input" or not rule_for(n).affine}
    return bound_rows(graph, graph.output_name, objective_matrix(graph, C, lower), boxes, leaves)
