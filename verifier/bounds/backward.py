"""The backward linear-bound interpreter shared by CROWN and the tight IBP objective.

It walks any DAG in reverse topological order, calling each op's `backward` rule (see
`verifier.bounds.ops`) and summing the coefficients that reach a node from all of its consumers,
until the coefficients sit on "leaf" nodes, where they are concretised against a box.
"""
from __future__ import annotations

from typing import Collection, Mapping, Optional

import torch

from verifier.bounds.box import Box, concretize_lower
from verifier.bounds.ops import OPS, OpRule
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor


def rule_for(node: Node) -> OpRule:
    """The registered rule of a node, with a clear error for an op nobody taught us."""
    try:
        return OPS[node.op]
    except KeyError:
        raise ValueError(f"node {node.name!r}: no bound rules for op {node.op!r}") from None


def propagate_backward(graph: Graph, start: str, A: Tensor, bounds: Mapping[str, Box],
                       leaves: Collection[str], relax: Optional[Mapping[str, Tensor]] = None,
                       ) -> tuple[dict[str, Tensor], Tensor]:
    """Push the expression sum(A * y_start) back to the leaves.

    A is (B or 1, R, *start.shape). Returns the coefficients on each reached leaf and a bias (B or 1, R)
    such that sum(A * y_start) >= sum over leaves of sum(A_leaf * y_leaf) + bias on every feasible
    input. The input node is always a leaf. `bounds` must hold a box for every input of a non-affine
    node on the way; `relax` maps node names to their rule's relaxation parameter.
    """
    relax = relax or {}
    by_name = graph.by_name
    pending: dict[str, Tensor] = {start: A}
    bias = A.new_zeros(A.shape[:2])
    reached: dict[str, Tensor] = {}
    stop = [n.name for n in graph.nodes].index(start)
    for node in reversed(graph.nodes[: stop + 1]):
        A_node = pending.pop(node.name, None)
        if A_node is None:
            continue  # not an ancestor of start (or a dead branch)
        if node.op == "input" or node.name in leaves:
            reached[node.name] = A_node
            continue
        input_As, node_bias = _step(node, A_node, bounds, relax)
        bias = bias + node_bias
        for name, A_in in zip(node.inputs, input_As):
            if A_in is not None:
                A_in = A_in.reshape(A_in.shape[:2] + by_name[name].shape)
                pending[name] = A_in if name not in pending else pending[name] + A_in
    return reached, bias


def _step(node: Node, A: Tensor, bounds: Mapping[str, Box],
          relax: Mapping[str, Tensor]) -> tuple[list[Optional[Tensor]], Tensor]:
    rule = rule_for(node)
    if rule.affine:
        return rule.backward(node, A, (None,) * len(node.inputs), None)
    return rule.backward(node, A, tuple(bounds.get(i) for i in node.inputs), relax.get(node.name))


def lower_rows(graph: Graph, start: str, A: Tensor, bounds: Mapping[str, Box],
               leaves: Collection[str], relax: Optional[Mapping[str, Tensor]] = None,
               ) -> tuple[Tensor, dict[str, Tensor]]:
    """Lower bounds (B, R) of sum(A * y_start), A (B or 1, R, *start.shape), and the coefficients of
    the linear lower bound on each reached leaf. Every reached leaf needs a box in `bounds`."""
    reached, bias = propagate_backward(graph, start, A, bounds, leaves, relax)
    rows = bias.expand(bounds[graph.input_name][0].shape[0], A.shape[1])
    for name, A_leaf in reached.items():
        rows = rows + concretize_lower(A_leaf, bounds[name])
    return rows, reached


def bound_rows(graph: Graph, start: str, C: Tensor, bounds: Mapping[str, Box],
               leaves: Collection[str], relax: Optional[Mapping[str, Tensor]] = None,
               need_upper: bool = True) -> Box:
    """Lower and upper bounds (B, k) of sum(C * y_start), C (B or 1, k, *start.shape).

    Both directions run in one backward pass over the stacked rows [C; -C], so relax parameters
    with a row dimension cover 2k rows (lower-bound rows first) when need_upper, else k rows.
    Without need_upper the upper bound is +inf.
    """
    k = C.shape[1]
    rows, _ = lower_rows(graph, start, torch.cat([C, -C], dim=1) if need_upper else C, bounds, leaves, relax)
    if not need_upper:
        return rows, torch.full_like(rows, float("inf"))
    return rows[:, :k], -rows[:, k:]
