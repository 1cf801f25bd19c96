"""alpha-CROWN: CROWN with the relaxations optimised by projected gradient ascent (Adam).

The parameters are the lower slopes of relus (and leaky relus), and the tangent points of the lines
of sigmoid and tanh (two per neuron, for the upper and the lower line; see `activations`). Each lives
in [0, 1], where every value gives a sound bound (the rules project any other value there too), so
every iterate is sound and the best bound per row over all iterates is kept. Intermediate bounds come
from one plain CROWN pass; those on the inputs of sigmoid/tanh layers (`AlphaConfig.intermediate_ops`)
are then tightened layer by layer, each neuron's by an alpha-CROWN run of its own (as alpha,beta-CROWN
does: CROWN's bounds through S-shaped layers are loose, and each layer's looseness compounds in the
next). Then they are held fixed, and the parameters of the objective pass are optimised per neuron,
per objective row and per batch element.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Optional

import torch

from verifier.bounds.activations import default_s_shape_relax
from verifier.bounds.adam import Adam
from verifier.bounds.ball import LpBall
from verifier.bounds.box import Box
from verifier.bounds.crown import MAX_PASS_ELEMENTS, crown, relaxed_inputs, unit_rows
from verifier.bounds.ops import default_relu_alpha
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor


@dataclass(frozen=True)
class AlphaConfig:
    iterations: int = 20  # Adam steps, for the objective and for each intermediate layer
    lr: float = 0.1
    # The input bounds of these ops' nodes are tightened by alpha-CROWN before the objective's run
    # (one run per layer, each with its own parameters). Relus are left out: ReLU branch and bound
    # (`bab.relu_split`) optimises its root's intermediate bounds itself, so it would be paid twice.
    intermediate_ops: tuple[str, ...] = ("sigmoid", "tanh")


@dataclass(frozen=True)
class AlphaResult:
    lb: Tensor  # (B, k) best lower bound of C @ y over all iterates
    # per optimised node, the parameters of the best iterate per row: (B, k, *shape) for relus,
    # (B, k, *shape, 2) for sigmoid/tanh (upper, lower tangent point)
    alphas: Mapping[str, Tensor]
    intermediate: Mapping[str, Box]


# CROWN's default parameters from a node's input box (l, u), per op with an optimisable relaxation:
# (B, *shape), or (B, *shape, 2) for the two lines of sigmoid/tanh. All live in [0, 1].
_DEFAULT_RELAX: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "relu": default_relu_alpha,
    "leaky_relu": default_relu_alpha,  # relu's parameter: a position between its two valid slopes
    "sigmoid": default_s_shape_relax,
    "tanh": default_s_shape_relax,
}


def initial_alphas(graph: Graph, intermediate: Mapping[str, Box], k: int) -> dict[str, Tensor]:
    """CROWN's relaxation parameters, one copy per objective row (dim 1): iteration 0 of alpha-CROWN
    is CROWN."""
    out = {}
    for node in graph.nodes:
        default = _DEFAULT_RELAX.get(node.op)
        if default is not None:
            a = default(*intermediate[node.inputs[0]]).unsqueeze(1)
            out[node.name] = a.expand((a.shape[0], k) + a.shape[2:]).clone()
    return out


def alpha_crown(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, *,
                config: AlphaConfig = AlphaConfig(), deadline: Optional[float] = None,
                intermediate: Optional[Mapping[str, Box]] = None,
                init: Optional[Mapping[str, Tensor]] = None, ball: Optional[LpBall] = None) -> AlphaResult:
    """Lower bounds of C @ f(x) over [lower, upper] (∩ `ball`), at least as tight as CROWN's.

    `intermediate` boxes are used as they are (not tightened); `init` warm-starts the parameters (e.g.
    from a parent subproblem; shapes as `initial_alphas`); `deadline` (time.monotonic()) stops the
    iterations early with the best bound so far. The returned intermediate bounds and parameters
    give the returned bound back, except on a row no iterate improved on CROWN's bound before the
    intermediate bounds were tightened (a rare case for S-shaped layers, whose lines do not always
    improve when the box shrinks), which keeps that bound.
    """
    with torch.no_grad():
        base = crown(graph, lower, upper, C, intermediate=intermediate, need_upper=False, ball=ball)
    inter = {name: (l.detach(), u.detach()) for name, (l, u) in base.intermediate.items()}
    if config.iterations > 0 and config.intermediate_ops:
        inter = _tighten_intermediate(graph, lower, upper, inter, config, deadline, set(intermediate or ()), ball)
    k = base.lb.shape[1]
    alphas = {n: a.detach().clone().requires_grad_(True)
              for n, a in (dict(init) if init is not None else initial_alphas(graph, inter, k)).items()}
    best_lb = base.lb.detach().clone()
    best_alphas = initial_alphas(graph, inter, k)  # the parameters behind best_lb (CROWN's) so far
    if not alphas or config.iterations <= 0:
        return AlphaResult(best_lb, best_alphas, inter)
    opt = Adam([(list(alphas.values()), config.lr)])
    for _ in range(config.iterations):
        if deadline is not None and time.monotonic() > deadline:
            break
        lb = crown(graph, lower, upper, C, intermediate=inter, alphas=alphas, need_upper=False, ball=ball).lb
        _keep_best(best_lb, best_alphas, lb.detach(), alphas)
        opt.zero_grad()
        (-lb.sum()).backward()
        opt.step()
        with torch.no_grad():
            for a in alphas.values():
                a.clamp_(0.0, 1.0)  # the valid range of every parameter (slopes and tangent points)
    with torch.no_grad():
        lb = crown(graph, lower, upper, C, intermediate=inter, alphas=alphas, need_upper=False, ball=ball).lb
        _keep_best(best_lb, best_alphas, lb, alphas)
    return AlphaResult(best_lb, best_alphas, inter)


def _keep_best(best_lb: Tensor, best_alphas: dict[str, Tensor], lb: Tensor, alphas: Mapping[str, Tensor]) -> None:
    """Per (batch, row), remember the bound and parameters of the best iterate so far (in place);
    parameters are (B, k, ...), whatever follows."""
    better = lb > best_lb  # (B, k)
    best_lb.copy_(torch.where(better, lb, best_lb))
    for name, a in alphas.items():
        mask = better.reshape(better.shape + (1,) * (a.dim() - 2))
        best_alphas[name].copy_(torch.where(mask, a.detach(), best_alphas[name]))


def _tighten_intermediate(graph: Graph, lower: Tensor, upper: Tensor, inter: dict[str, Box],
                          config: AlphaConfig, deadline: Optional[float], fixed: set[str],
                          ball: Optional[LpBall] = None) -> dict[str, Box]:
    """inter with the inputs of `config.intermediate_ops` nodes tightened in topological order, each
    by alpha-CROWN on the graph cut at that node (its neurons' upper and lower bounds as the rows, on
    the already tightened boxes before it), intersected with its CROWN box. `fixed` boxes stay as
    they are; past the deadline the remaining layers keep CROWN's boxes (all are sound)."""
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    out = dict(inter)
    inner = replace(config, intermediate_ops=())
    for name, consumers in relaxed_inputs(graph).items():
        node = graph.by_name[name]
        if (name in fixed or node.op == "input" or name not in out
                or not any(c.op in config.intermediate_ops for c in consumers)):
            continue
        if deadline is not None and time.monotonic() > deadline:
            break
        cut = Graph(graph.nodes[: order[name] + 1], graph.input_name, name)
        before = {n: box for n, box in out.items() if order[n] < order[name]}
        out[name] = _alpha_neuron_bounds(cut, node, lower, upper, out[name], before, inner, deadline, ball)
    return out


def _alpha_neuron_bounds(cut: Graph, node: Node, lower: Tensor, upper: Tensor, box: Box,
                         before: Mapping[str, Box], config: AlphaConfig, deadline: Optional[float],
                         ball: Optional[LpBall] = None) -> Box:
    """box (B, *node.shape) intersected with alpha-CROWN bounds of the output neurons of `cut` (its
    output is `node`) that are not already points in every batch element, in chunks of rows small
    enough for MAX_PASS_ELEMENTS."""
    l, u = (t.flatten(1) for t in box)
    rows = (l < u).any(0).nonzero().flatten()
    n = math.prod(node.shape)
    widest = max(math.prod(m.shape) for m in cut.nodes)
    chunk = max(1, MAX_PASS_ELEMENTS // (2 * l.shape[0] * widest))
    for part in rows.split(chunk):
        E = unit_rows(part, n, l)
        lb = alpha_crown(cut, lower, upper, torch.cat([E, -E]), config=config, deadline=deadline,
                         intermediate=before, ball=ball).lb.detach()
        lo, hi = lb[:, : part.numel()], -lb[:, part.numel():]
        l = l.index_copy(1, part, torch.maximum(l[:, part], lo))
        u = u.index_copy(1, part, torch.minimum(u[:, part], hi))
    return l.reshape(box[0].shape), u.reshape(box[1].shape)
