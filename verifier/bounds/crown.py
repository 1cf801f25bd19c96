"""CROWN: backward linear bound propagation with per-neuron linear relaxations.

Intermediate (pre-activation) bounds are computed layer by layer by CROWN itself, each intersected
with the IBP box obtained from the already-tightened boxes of its inputs (and, on networks with few
inputs, with forward linear bounds, which settle most neurons before any backward pass); the
objective C @ y is then bounded by one backward pass to the input box. Lower slopes of relus can be injected (`alphas`),
and the whole computation is differentiable in them, which is what alpha-CROWN optimises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import torch

from verifier.bounds.backward import bound_rows, lower_rows, rule_for
from verifier.bounds.ball import LpBall, take_rows
from verifier.bounds.box import Box, best_of, input_box, objective_matrix, on_device_of
from verifier.bounds.forward import ForwardPass, supports_forward
from verifier.bounds.ibp import ibp_objective, propagate_intervals
from verifier.bounds.ops import ReluBox
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor


@dataclass(frozen=True)
class CrownResult:
    lb: Tensor  # (B, k) lower bounds of C @ y
    ub: Tensor  # (B, k) upper bounds of C @ y; +inf when not asked for
    intermediate: Mapping[str, Box]  # the bounds used on every input of a non-affine node (relu)


def crown(graph: Graph, lower: Tensor, upper: Tensor, C: Optional[Tensor] = None, *,
          intermediate: Optional[Mapping[str, Box]] = None,
          alphas: Optional[Mapping[str, Tensor]] = None, need_upper: bool = True,
          ball: Optional[LpBall] = None) -> CrownResult:
    """CROWN bounds of C @ f(x) over the box [lower, upper] (intersected with `ball` when given: every
    backward pass is then concretised at the input over the ball too, see `ball`).

    lower/upper: (B, *input_shape) or (B, n_inputs); their dtype/device are used throughout.
    C: (k, n_outputs) shared by the batch, or (B, k, n_outputs); None = identity over outputs.
    intermediate: boxes (B, *node.shape) to use as they are for the named nodes (e.g. tightened by
        branch and bound); the others are computed. The input's box always comes from lower/upper.
    alphas: per relu node name, the lower slope of its unstable neurons (clamped to [0, 1]) for the
        objective pass, broadcastable to (B, R, *node.shape) with R = 2k rows (the k lower-bound
        rows, then the k upper-bound rows) when need_upper, else R = k. Missing: CROWN's adaptive
        choice. Intermediate bounds always use the adaptive choice.
    """
    graph, boxes, C = _prepare(graph, lower, upper, C, intermediate, alphas, ball)
    lb, ub = bound_rows(graph, graph.output_name, C, boxes, {graph.input_name}, alphas, need_upper)
    return CrownResult(lb=lb, ub=ub, intermediate={n: boxes[n] for n in relaxed_inputs(graph)})


def crown_with_input_coefficients(graph: Graph, lower: Tensor, upper: Tensor,
                                  C: Optional[Tensor] = None, *,
                                  intermediate: Optional[Mapping[str, Box]] = None,
                                  alphas: Optional[Mapping[str, Tensor]] = None,
                                  ball: Optional[LpBall] = None) -> tuple[Tensor, Tensor]:
    """CROWN lower bounds lb (B, k) of C @ f(x) with the coefficients A (B, k, n_inputs) of the linear
    lower bound behind them (on the flattened input): C @ f(x) >= A x + lb - min_box(A x) on the box.

    Input-split branch and bound ranks the dims to split by |A| x width. Arguments as for `crown`
    with need_upper=False (so alphas cover k rows).
    """
    graph, boxes, C = _prepare(graph, lower, upper, C, intermediate, alphas, ball)
    lb, reached = lower_rows(graph, graph.output_name, C, boxes, {graph.input_name}, alphas)
    A = reached.get(graph.input_name)
    if A is None:  # an output that does not depend on the input
        return lb, lb.new_zeros(lb.shape + (graph.n_inputs,))
    return lb, A.flatten(2).expand(lb.shape[0], -1, -1)


def intermediate_bounds(graph: Graph, lower: Tensor, upper: Tensor,
                        ball: Optional[LpBall] = None) -> dict[str, Box]:
    """The boxes CROWN uses on the inputs of the relaxed nodes (what `intermediate=` takes back)."""
    _, boxes, _ = _prepare(graph, lower, upper, None, None, None, ball)
    return {n: boxes[n] for n in relaxed_inputs(graph)}


def _prepare(graph: Graph, lower: Tensor, upper: Tensor, C: Optional[Tensor],
             intermediate: Optional[Mapping[str, Box]], alphas: Optional[Mapping[str, Tensor]],
             ball: Optional[LpBall] = None) -> tuple[Graph, dict[str, Box], Tensor]:
    """The graph on the box's device/dtype, every node's box and the objective matrix."""
    graph = on_device_of(graph, lower)
    relaxed = {n.name for n in graph.nodes if n.op != "input" and not rule_for(n).affine}
    unknown = set(alphas or {}) - relaxed
    if unknown:
        raise ValueError(f"alphas given for {sorted(unknown)}, which are not relaxed (non-affine) nodes")
    box = input_box(graph, lower, upper, ball)
    return graph, _boxes_with_intermediate(graph, box, intermediate or {}), objective_matrix(graph, C, box[0])


def crown_objective(graph: Graph, lower: Tensor, upper: Tensor, C: Optional[Tensor] = None,
                    ball: Optional[LpBall] = None) -> Box:
    """Per row, the tighter of the CROWN and the IBP bounds of C @ f(x): (lb, ub), each (B, k)."""
    result = crown(graph, lower, upper, C, ball=ball)
    return best_of((result.lb, result.ub), ibp_objective(graph, lower, upper, C, ball=ball))


def relaxed_inputs(graph: Graph) -> dict[str, list[Node]]:
    """The nodes whose boxes the relaxations depend on (inputs of non-affine nodes), in topological
    order, each with its non-affine consumers."""
    consumers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        if node.op != "input" and not rule_for(node).affine:
            for name in node.inputs:
                consumers.setdefault(name, []).append(node)
    return {n.name: consumers[n.name] for n in graph.nodes if n.name in consumers}


# Networks with at most this many inputs also get forward linear bounds on every node (cost ~ inputs
# x layer width per neuron, far below a backward pass): they rule out most neurons CROWN would
# otherwise bound one by one (ACAS Xu, on small boxes: 50 of 50 per deep layer by IBP, ~3 by these).
FORWARD_MAX_INPUTS = 32


def _boxes_with_intermediate(graph: Graph, box: Box, given: Mapping[str, Box]) -> dict[str, Box]:
    """Every node's box, given boxes taken as they are, inputs of relaxations tightened by CROWN.

    On networks with few inputs, IBP's box of each node is first intersected with forward linear
    bounds (through the relaxations of the boxes found so far), so CROWN's backward passes cover only
    the neurons still unstable after that: far fewer passes, and boxes never wider than IBP's."""
    relaxed = relaxed_inputs(graph)
    forward = None
    if graph.n_inputs <= FORWARD_MAX_INPUTS and supports_forward(graph) and not set(relaxed) <= set(given):
        forward = ForwardPass(graph, box)

    def refine(node: Node, ibp_box: Box, boxes: dict[str, Box]) -> Box:
        if forward is not None:
            ibp_box = forward.tighten(node, ibp_box, boxes)
        if node.name in given:
            return _carrying_relaxation(given[node.name], relaxed.get(node.name))
        if node.name not in relaxed:
            return ibp_box
        return _carrying_relaxation(_tighten(graph, node, ibp_box, boxes, relaxed[node.name]), relaxed[node.name])

    return propagate_intervals(graph, box, refine)


def _carrying_relaxation(box: Box, consumers: Optional[list[Node]]) -> Box:
    """The box of a node that only relus consume as a `ReluBox` (its relaxation computed once, for
    every backward pass that crosses those relus); any other box as it is."""
    if not consumers or isinstance(box, ReluBox) or any(c.op != "relu" for c in consumers):
        return box
    return ReluBox(box[0], box[1])


def _tighten(graph: Graph, node: Node, ibp_box: Box, boxes: Mapping[str, Box],
             consumers: list[Node]) -> Box:
    """Intersect ibp_box with CROWN bounds on the neurons whose bounds the consumers' relaxations
    depend on (e.g. unstable relu inputs). The backward pass covers the union of those neurons over
    the batch, but each box only takes them where it needs them, so batching never changes a bound."""
    return tighten_where(graph, node, ibp_box, boxes, _loose_mask(ibp_box, consumers))


def tighten_where(graph: Graph, node: Node, box: Box, boxes: Mapping[str, Box], loose: Tensor) -> Box:
    """box (B, *s) intersected with CROWN bounds where `loose` (B, *s) is set. The backward pass covers
    the union of those neurons over the batch; each box takes new bounds only where it asked."""
    loose = loose.flatten(1)
    rows = loose.any(0).nonzero().flatten()
    if rows.numel() == 0:
        return box
    lower, upper = (b.flatten(1) for b in box)
    pairs = loose.nonzero()  # (P, 2): box, neuron
    if 2 * pairs.shape[0] <= loose.shape[0] * rows.numel():
        # Most boxes ask for few of the batch's neurons: one backward pass per (box, neuron) pair
        # costs less than the union's rows for every box, and gives the same bounds.
        at = (pairs[:, 0], pairs[:, 1])
        lb, ub = pair_bounds(graph, node, pairs, boxes)
        lower = lower.index_put(at, torch.maximum(lower[at], lb))
        upper = upper.index_put(at, torch.minimum(upper[at], ub))
    else:
        lb, ub = neuron_bounds(graph, node, rows, boxes)
        take = loose[:, rows]
        lower = _tighten_columns(lower, rows, take, lb, torch.maximum)
        upper = _tighten_columns(upper, rows, take, ub, torch.minimum)
    return lower.reshape(box[0].shape), upper.reshape(box[1].shape)


# Elements of the largest coefficient tensor one backward pass may hold (B x rows x the largest
# node): big convolutional layers have tens of thousands of neurons, so their rows go in chunks.
MAX_PASS_ELEMENTS = 2 ** 26


def neuron_bounds(graph: Graph, node: Node, rows: Tensor, boxes: Mapping[str, Box]) -> Box:
    """CROWN bounds (B, R) of the neurons `rows` (flat indices) of `node`, in chunks of rows small
    enough for MAX_PASS_ELEMENTS."""
    like = boxes[graph.input_name][0]
    batch = like.shape[0]
    widest = max(math.prod(n.shape) for n in graph.nodes)
    chunk = max(1, MAX_PASS_ELEMENTS // (batch * widest))
    lows, ups = [], []
    for part in rows.split(chunk):
        C = unit_rows(part, math.prod(node.shape), like).reshape((1, part.numel()) + node.shape)
        lb, ub = bound_rows(graph, node.name, C, boxes, {graph.input_name})
        lows.append(lb)
        ups.append(ub)
    return torch.cat(lows, dim=1), torch.cat(ups, dim=1)


def pair_bounds(graph: Graph, node: Node, pairs: Tensor, boxes: Mapping[str, Box]) -> Box:
    """CROWN bounds (P,) of neuron pairs[p, 1] of `node` on box pairs[p, 0]: every pair is its own
    batch element (the boxes it needs gathered), in chunks within MAX_PASS_ELEMENTS."""
    like = boxes[graph.input_name][0]
    # Only the boxes a backward pass from `node` can reach: those of nodes before it (topological order).
    before = {n.name for n in graph.nodes[: [n.name for n in graph.nodes].index(node.name)]}
    used = {name: boxes[name] for name in [graph.input_name, *relaxed_inputs(graph)]
            if name in boxes and name in before}
    per_pair = 2 * max(math.prod(n.shape) for n in graph.nodes) + 2 * sum(b[0][0].numel() for b in used.values())
    chunk = max(1, MAX_PASS_ELEMENTS // per_pair)
    lows, ups = [], []
    for part in pairs.split(chunk):
        at = part[:, 0]
        sub = {name: take_rows(b, at) for name, b in used.items()}
        C = unit_rows(part[:, 1], math.prod(node.shape), like).reshape((part.shape[0], 1) + node.shape)
        lb, ub = bound_rows(graph, node.name, C, sub, {graph.input_name})
        lows.append(lb[:, 0])
        ups.append(ub[:, 0])
    return torch.cat(lows), torch.cat(ups)


def unit_rows(rows: Tensor, n: int, like: Tensor) -> Tensor:
    """The rows of the n x n identity picked by `rows`, (R, n), without building the identity."""
    out = torch.zeros((rows.numel(), n), dtype=like.dtype, device=like.device)
    return out.index_put_((torch.arange(rows.numel(), device=like.device), rows),
                          torch.ones((), dtype=like.dtype, device=like.device))


def _tighten_columns(flat: Tensor, rows: Tensor, take: Tensor, new: Tensor,
                     pick: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """flat (B, n) with pick(old, new) in columns `rows` where `take`; out of place (autograd-safe)."""
    old = flat[:, rows]
    return flat.index_copy(1, rows, torch.where(take, pick(old, new), old))


def _loose_mask(box: Box, consumers: list[Node]) -> Tensor:
    """(B, *s) mask of the neurons on which some consumer's relaxation is not known to be exact."""
    mask = torch.zeros_like(box[0], dtype=torch.bool)
    for consumer in consumers:
        exact_where = rule_for(consumer).exact_where
        mask = mask | (torch.ones_like(mask) if exact_where is None else ~exact_where(*box))
    return mask
