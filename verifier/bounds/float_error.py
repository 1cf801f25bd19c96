"""Bounds on the float32 evaluation error of a network over input boxes (for `--semantics float32`).

A proof about the real-valued network says nothing about the network as it runs: in IEEE float32, in
whatever summation order the runtime picks. This module bounds, per node and per box, how far any
float32 evaluation can be from the real value, so that a real margin m of a row r proves the float32
network too when m > E_r.

The model (standard rounding-error analysis, u = 2^-24, gamma_n = n u / (1 - n u)):
- input: the network sees fl(x); error u |x| where the box's ends are not float32 numbers, else 0
  (every float32 point of a box with float32 ends is itself exact).
- linear / conv, n terms: fl(W x^ + b) - (W x + b) <= |W| e_x + gamma_{n+3} (|W| |x^| + |b|) + eta,
  with |x^| <= |x| + e_x, in any order of summation (FMA included). Two extra roundings cover the bias
  added separately and weights the loader folded (one rounding of each folded weight).
- add: the sum of the input errors plus gamma_k of the magnitudes; scale_shift: |s| e + gamma_3 (...).
- relu, reshape, transpose, concat, pad: exact and 1-Lipschitz: the error passes through.
- leaky_relu: max(1, |alpha|) e + u |y|; mul / square: the product rule plus u |y|.
- sigmoid / tanh: Lipschitz 1/4 and 1, plus the runtime's approximation, ASSUMED within 64 ulp of the
  result plus 2^-24 absolute (vectorised library kernels are accurate to a few ulp; this is not proved).
- anything else (softmax, step, where, power, reciprocal, ...): +inf, so float32 semantics proves nothing.
eta = 2 (n + 1) 2^-126 covers underflow (even with denormals flushed to zero).

Magnitudes |x| come from IBP of the real network, computed in float64; the float64 rounding of this
computation is covered by inflating every node's bound by a relative 2^-40 (far above float64's own).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from verifier.bounds.box import input_box
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor
Box = tuple[Tensor, Tensor]

U32 = 2.0 ** -24  # unit roundoff of float32 (round to nearest)
TINY32 = 2.0 ** -126  # the smallest normal float32: the most one flushed or underflowing result can lose
INFLATE = 1.0 + 2.0 ** -40  # covers this module's own float64 rounding
LIBRARY_ULPS = 64  # assumed accuracy of the runtime's sigmoid/tanh kernels, in ulp of the result


def gamma(n: int) -> float:
    """gamma_n = n u / (1 - n u): the relative error bound of a float32 sum / dot product of n terms."""
    nu = n * U32
    if nu >= 1:
        return math.inf
    return nu / (1 - nu)


def input_rounding(lower: Tensor, upper: Tensor) -> Tensor:
    """Per box and input (B, n): |fl32(x) - x| over the box; 0 where both ends are float32 numbers."""
    exact = (lower.float().double() == lower.double()) & (upper.float().double() == upper.double())
    mag = torch.maximum(lower.double().abs(), upper.double().abs())
    return torch.where(exact, torch.zeros_like(mag), U32 * mag + 2.0 ** -149)


def node_errors(graph: Graph, lower: Tensor, upper: Tensor, known: Optional[dict[str, Box]] = None,
                ) -> dict[str, Tensor]:
    """Every node's float32 evaluation error bound over each box: (B, *node.shape) float64 tensors.

    lower/upper: (B, n_inputs) or (B, *input_shape) boxes of the real input. `known`: sound boxes of
    some nodes' real values (CROWN's intermediate bounds), intersected with IBP's."""
    return _forward(graph, lower, upper, known)[0]


def _forward(graph: Graph, lower: Tensor, upper: Tensor, known: Optional[dict[str, Box]] = None,
             ) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Box], Graph]:
    """Per node: the error bound, the rounding the node itself adds (its local error), the real value's
    box (IBP, tightened by `known`; all float64), and the float64 graph."""
    from verifier.bounds.backward import rule_for

    g64 = graph.to(lower.device, torch.float64)
    lo, up = lower.double(), upper.double()
    boxes: dict[str, Box] = {}
    err: dict[str, Tensor] = {}
    local: dict[str, Tensor] = {}
    for node in g64.nodes:
        if node.op == "input":
            boxes[node.name] = input_box(g64, lo, up)
            l0, u0 = boxes[node.name]
            err[node.name] = local[node.name] = input_rounding(l0.flatten(1), u0.flatten(1)).reshape(l0.shape)
            continue
        box = rule_for(node).interval(node, *(boxes[i] for i in node.inputs))
        rule = _RULES.get(node.op)
        ins_e = [err[i] for i in node.inputs]
        ins_m = [torch.maximum(boxes[i][0].abs(), boxes[i][1].abs()) + err[i] for i in node.inputs]  # |x^|
        out_m = torch.maximum(box[0].abs(), box[1].abs())
        e = torch.full_like(out_m, math.inf) if rule is None else rule(node, ins_e, ins_m, out_m)
        if node.op == "relu":  # both relu(x) and relu(x^) lie in [relu(l - e), relu(u + e)]
            (l, u), ei = boxes[node.inputs[0]], ins_e[0]
            e = torch.minimum(e, torch.relu(u + ei) - torch.relu(l - ei))
        e = (e * INFLATE).nan_to_num(nan=math.inf, posinf=math.inf)
        if known and node.name in known:
            # CROWN's box, computed in float32, may owe up to this node's float32 error to rounding (the
            # argument of verifier.bounds.margin_check): widened by it before it tightens IBP's
            kl, ku = (t.double().reshape(box[0].shape) for t in known[node.name])
            box = torch.maximum(box[0], kl - e), torch.minimum(box[1], ku + e)
            box = torch.minimum(box[0], box[1]), torch.maximum(box[0], box[1])
        boxes[node.name] = box
        err[node.name] = e
        if node.op in _LOCAL:
            local[node.name] = (_LOCAL[node.op](node, ins_m) * INFLATE).nan_to_num(nan=math.inf, posinf=math.inf)
    return err, local, boxes, g64


def row_errors(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor,
               known: Optional[dict[str, Box]] = None) -> Tensor:
    """Per box and row (B, k): a bound E >= |C (fl32(y) - y)| over the box, for C (k, m) or (B, k, m).

    The rows C·y + d are taken as evaluated exactly (or in float64) on the float32 outputs y. The
    better of two sound bounds: the forward one (|C| times the output's error bound) and, for chains of
    linear / relu / reshape / scale_shift (MLPs), the backward one (`_chain_rows`)."""
    err, local, boxes, g64 = _forward(graph, lower, upper, known)
    e = err[graph.output_name].flatten(1)  # (B, m)
    Cb = C.double().to(e.device)
    Cb = Cb.expand(e.shape[0], -1, -1) if Cb.dim() == 3 else Cb.unsqueeze(0).expand(e.shape[0], -1, -1)
    rows = torch.einsum("bkm,bm->bk", Cb.abs(), e)
    if _is_chain(g64):
        rows = torch.minimum(rows, _chain_rows(g64.nodes, Cb, err, local, boxes))
    return (rows * INFLATE).nan_to_num(nan=math.inf, posinf=math.inf)


def _is_chain(graph: Graph) -> bool:
    prev = None
    for node in graph.nodes:
        if node.op not in _CHAIN_OPS or (prev is not None and node.inputs != (prev,)):
            return False
        prev = node.name
    return prev == graph.output_name


def _chain_rows(nodes: tuple[Node, ...], C: Tensor, err: dict[str, Tensor], local: dict[str, Tensor],
                boxes: dict[str, tuple[Tensor, Tensor]]) -> Tensor:
    """The output rows' error as the sum over nodes of (the rows' sensitivity to that node) x (the
    rounding it adds): fl32(f) - f = sum_k J_k r_k, where J_k chains the signed weights and, per relu,
    the secant slope s = (relu(x^) - relu(x)) / (x^ - x) in [0, 1] (exactly 1 where x and x^ are both
    >= 0, 0 where both <= 0, judged from the forward error bound). J_k is carried as an interval
    (centre, radius) backward from C, so the signs of the weights cancel where they do in the network,
    unlike |W| e. C (B, k, m) float64."""
    B, k = C.shape[:2]
    centre, radius = C, torch.zeros_like(C)
    total = torch.zeros(B, k, dtype=torch.float64, device=C.device)
    for node in reversed(nodes):
        if node.name in local:
            total = total + torch.einsum("bkn,bn->bk", centre.abs() + radius, local[node.name].flatten(1))
        if node.op == "linear":
            W = node.params["W"]
            centre, radius = centre @ W, radius @ W.abs()
        elif node.op == "scale_shift":
            s = torch.broadcast_to(node.params["scale"], node.shape).flatten()
            centre, radius = centre * s, radius * s.abs()
        elif node.op == "relu":
            (l, u), e = boxes[node.inputs[0]], err[node.inputs[0]]
            on = ((l - e) >= 0).flatten(1).unsqueeze(1)
            off = ((u + e) <= 0).flatten(1).unsqueeze(1)
            lo, hi = centre - radius, centre + radius  # times s in [0, 1]: [min(0, lo), max(0, hi)]
            lo2, hi2 = lo.clamp(max=0), hi.clamp(min=0)
            c_mid, r_mid = (lo2 + hi2) / 2, (hi2 - lo2) / 2
            centre = torch.where(on, centre, torch.where(off, torch.zeros_like(centre), c_mid))
            radius = torch.where(on, radius, torch.where(off, torch.zeros_like(radius), r_mid))
        # reshape and the input: rows stay flat, nothing to do
    return total


# --- per-op rules: (node, input errors, input magnitudes incl. error, real output magnitude) -> error --

Rule = Callable[[Node, list[Tensor], list[Tensor], Tensor], Tensor]


def _linear(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    Wa, ba = node.params["W"].abs(), node.params["b"].abs()
    n = Wa.shape[1]
    return e[0] @ Wa.T + gamma(n + 3) * (m[0] @ Wa.T + ba) + 2 * (n + 1) * TINY32


def _conv(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    a = node.attrs
    args = {"stride": tuple(a["stride"]), "padding": tuple(a["padding"]), "dilation": tuple(a["dilation"]),
            "groups": int(a["groups"])}
    Wa, ba = node.params["W"].abs(), node.params["b"].abs()
    n = int(Wa[0].numel())
    return F.conv2d(e[0], Wa, None, **args) + gamma(n + 3) * F.conv2d(m[0], Wa, ba, **args) \
        + 2 * (n + 1) * TINY32


def _passthrough(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    """Exact data movement (and relu, 1-Lipschitz and exact): the op applied to the errors, with
    constants (pad values) contributing none: op(e) - op(0) is e moved where the op moves x."""
    from verifier.bounds.ops import OPS

    rule = OPS[node.op]
    moved = rule.forward(node, *e)
    if node.op == "pad":
        moved = moved - rule.forward(node, *[torch.zeros_like(t) for t in e])
    return moved


def _add(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    return sum(e[1:], e[0]) + gamma(len(e)) * sum(m[1:], m[0]) + len(e) * TINY32


def _scale_shift(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    s, t = node.params["scale"].abs(), node.params["shift"].abs()
    return e[0] * s + gamma(3) * (m[0] * s + t) + 2 * TINY32


def _leaky_relu(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    from verifier.bounds.activations import leaky_alpha

    slope = max(1.0, abs(float(leaky_alpha(node))))
    return slope * e[0] + U32 * slope * m[0] + TINY32


def _mul(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    a, b = m[0] - e[0], m[1] - e[1]  # real magnitudes
    return a * e[1] + b * e[0] + e[0] * e[1] + U32 * m[0] * m[1] + TINY32


def _square(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
    a = m[0] - e[0]
    return 2 * a * e[0] + e[0] * e[0] + U32 * m[0] * m[0] + TINY32


def _smooth(lipschitz: float) -> Rule:
    def rule(node: Node, e: list[Tensor], m: list[Tensor], out: Tensor) -> Tensor:
        return lipschitz * e[0] + LIBRARY_ULPS * U32 * (out + lipschitz * e[0]) + U32

    return rule


_RULES: dict[str, Rule] = {
    "linear": _linear, "conv": _conv, "add": _add, "scale_shift": _scale_shift,
    "relu": _passthrough, "reshape": _passthrough, "transpose": _passthrough, "concat": _passthrough,
    "pad": _passthrough, "leaky_relu": _leaky_relu, "mul": _mul, "square": _square,
    "sigmoid": _smooth(0.25), "tanh": _smooth(1.0),
}

# The rounding a node adds on its own (its inputs exact), for the backward bound of chains.
_LOCAL: dict[str, Callable[[Node, list[Tensor]], Tensor]] = {
    "linear": lambda node, m: _linear(node, [torch.zeros_like(m[0])], m, m[0]),
    "scale_shift": lambda node, m: _scale_shift(node, [torch.zeros_like(m[0])], m, m[0]),
}
_CHAIN_OPS = {"input", "linear", "relu", "reshape", "scale_shift"}


def supported(graph: Graph) -> Optional[str]:
    """None when every op has an error rule, else the first op that has none (float32 proofs then fail)."""
    for node in graph.nodes:
        if node.op != "input" and node.op not in _RULES:
            return node.op
    return None
