"""IBP propagation tightness (Mao, Müller, Fischer, Vechev: "Understanding certified training with interval
bound propagation", ICLR 2024) and ReLU-state statistics at eps.

Tightness of a sample (x, y): linearise the network at x, i.e. fix every relu to its state at x itself
(pre-activation >= 0: identity, else 0; the paper's "local" variant, used for all its experiments), so the
network becomes an affine map with matrix J = W_L D_{L-1} ... D_1 W_1. For each margin row c = e_y - e_j
(j != y; the last affine layers folded into c, as in IBP's elision) over the input box with half-width r
(the eps-box clipped to the valid range, as the paper does):

    optimal box radius      |c J| r
    IBP box radius          |c W_L| D_{L-1} |W_{L-1}| ... D_1 |W_1| r     (interval arithmetic layer by layer)
    tightness               optimal / IBP  in (0, 1]     (both clamped below at 1e-8, as in the paper's code)

Over an L1 / L2 ball (∩ the clipped box) both radii are taken as our bounds concretise: the optimal one
is min(eps ||c J||_q, |c J| r), and IBP bounds its first layer exactly over the ball (`ibp.ball_first_layer`)
before the interval arithmetic; the ReLU states come from bounds over the ball too.

The reported figure is the mean over all evaluated samples and all their K-1 margin rows (the paper's
`compute_tightness(...).mean()` averaged over the test set, true labels, every sample).

ReLU states per relu layer, at eps: active (lower bound >= 0), inactive (upper bound <= 0), unstable
(otherwise) — the conventions of our relu relaxation — counted on the pre-activation bounds of IBP (as the
paper's statistics) and of CROWN (the intermediate bounds `verifier.bounds.crown` uses).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from verifier.bounds.backward import bound_rows, propagate_backward
from verifier.bounds.ball import LpBall
from verifier.bounds.box import Box, input_box, objective_matrix, on_device_of
from verifier.bounds.ibp import propagate_intervals
from verifier.errors import InputError
from verifier.model.graph import Graph, Node

Tensor = torch.Tensor


def relu_nodes(graph: Graph) -> list[Node]:
    """The relu nodes; any other non-affine op cannot be linearised by an activation pattern."""
    from verifier.bounds.ops import OPS

    other = sorted({n.op for n in graph.nodes
                    if n.op not in ("input", "relu") and not (n.op in OPS and OPS[n.op].affine)})
    if other:
        raise InputError(f"--report tightness: only relu networks can be linearised, this one has {', '.join(other)}")
    return [n for n in graph.nodes if n.op == "relu"]


def propagation_tightness(graph: Graph, x: Tensor, lower: Tensor, upper: Tensor, C: Tensor,
                          ball: Optional[LpBall] = None) -> Tensor:
    """Per sample and margin row (B, k): optimal box radius / IBP box radius of the network linearised at x.

    x, lower, upper: (B, n_inputs) flat; C (B, k, n_outputs) or (k, n_outputs); `ball` an L1/L2 ball
    intersected with the box.
    """
    from verifier.bounds.ibp import ball_first_layer

    graph = on_device_of(graph, lower)
    relus = relu_nodes(graph)
    box = input_box(graph, lower, upper, ball)
    Cm = objective_matrix(graph, C, lower)
    with torch.no_grad():
        values = graph.forward(x.reshape(box[0].shape), keep=True)
        pre = {n.inputs[0]: values[n.inputs[0]] for n in relus}
        # A point box at each relu input makes the relu rule exact: slope 1 where pre >= 0, else 0.
        reached, _ = propagate_backward(graph, graph.output_name, Cm, {k: (v, v) for k, v in pre.items()},
                                        {graph.input_name})
        A = reached[graph.input_name].flatten(2)  # (B or 1, k, n): c J per row
        radius = ((box[1] - box[0]) / 2).flatten(1)
        optimal = (A.abs() * radius.unsqueeze(1)).sum(-1)
        if ball is not None:
            optimal = torch.minimum(optimal, ball.radius(A))  # eps ||c J||_q per row
        first, linearised = ball_first_layer(graph, ball), _linearised_relus(pre)

        def refine(node: Node, ibp_box: Box, boxes: dict[str, Box]) -> Box:
            return linearised(node, ibp_box if first is None else first(node, ibp_box, boxes), boxes)

        boxes = propagate_intervals(graph, box, refine)
        leaves = {graph.input_name} | {n.name for n in relus}
        lb, ub = bound_rows(graph, graph.output_name, Cm, boxes, leaves)
        ibp_radius = (ub - lb) / 2
    return optimal.clamp(min=1e-8) / ibp_radius.clamp(min=1e-8)


def _linearised_relus(pre: dict[str, Tensor]) -> Any:
    """propagate_intervals' refine hook: a relu acts as its fixed 0/1 diagonal D on the interval (D >= 0)."""
    def refine(node: Node, ibp_box: Box, boxes: dict[str, Box]) -> Box:
        if node.op != "relu":
            return ibp_box
        l, u = boxes[node.inputs[0]]
        on = (pre[node.inputs[0]] >= 0).to(l.dtype)
        return l * on, u * on

    return refine


def relu_state_counts(graph: Graph, lower: Tensor, upper: Tensor, C: Tensor,
                      ball: Optional[LpBall] = None) -> dict[str, dict[str, np.ndarray]]:
    """Per bound method (ibp, crown), per relu node: counts (active, inactive, unstable) summed over the batch."""
    from verifier.bounds.crown import crown
    from verifier.bounds.ibp import ibp

    graph = on_device_of(graph, lower)
    relus = relu_nodes(graph)
    with torch.no_grad():
        ibp_boxes = ibp(graph, lower, upper, ball=ball)
        crown_boxes = crown(graph, lower, upper, C, need_upper=False, ball=ball).intermediate
    out: dict[str, dict[str, np.ndarray]] = {}
    for method, boxes in (("ibp", ibp_boxes), ("crown", crown_boxes)):
        out[method] = {}
        for n in relus:
            l, u = boxes[n.inputs[0]]
            active, inactive = int((l >= 0).sum()), int((u <= 0).sum())
            out[method][n.name] = np.array([active, inactive, l.numel() - active - inactive])
    return out


def tightness_report(net: Any, x: np.ndarray, labels: np.ndarray, eps: float, clip: Any, batch: int,
                     norm: str = "linf") -> dict[str, Any]:
    """Mean tightness and relu states over raw flat samples x (all of them, true labels), chunk by chunk."""
    from verifier.bounds.ball import norm_p
    from verifier.certify.network import eps_box, margin_matrix

    p = norm_p(norm)

    ratios, counts = [], {}
    for s in range(0, len(x), batch):
        xs, ys = x[s:s + batch], labels[s:s + batch]
        lower, upper, _, _ = eps_box(xs, eps, clip, net.dtype, net.device)
        C = margin_matrix(ys, net.n_outputs, net.dtype, net.device)
        xt = torch.as_tensor(xs, dtype=net.dtype, device=net.device)
        ball = None if np.isinf(p) else LpBall.around(xs, eps, p, net.dtype, net.device)
        ratios.append(propagation_tightness(net.graph, xt, lower, upper, C, ball).double().cpu().numpy().reshape(-1))
        for method, per_layer in relu_state_counts(net.graph, lower, upper, C, ball).items():
            for name, c in per_layer.items():
                counts.setdefault(method, {}).setdefault(name, np.zeros(3, dtype=np.int64))
                counts[method][name] += c
    r = np.concatenate(ratios) if ratios else np.zeros(0)
    layers = []
    for name in counts.get("ibp", {}):
        entry: dict[str, Any] = {"layer": name, "neurons": int(counts["ibp"][name].sum() // max(len(x), 1))}
        for method in ("ibp", "crown"):
            a, i, u = (counts[method][name] / max(counts[method][name].sum(), 1)).tolist()
            entry[method] = {"active": a, "inactive": i, "unstable": u}
        layers.append(entry)
    return {"definition": "mean over samples and margin rows of |cJ|r / (|cW_L|D..|W_1|r), relus fixed at x "
                          "(Mao et al. 2024, local)",
            "mean": float(r.mean()) if r.size else None, "median": float(np.median(r)) if r.size else None,
            "samples": int(len(x)), "relu_states": layers}
