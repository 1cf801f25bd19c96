"""Slopes for the checker's pre-activation bounds of a ReLU-split root's box (writer side, torch).

The ReLU-split search bounds every domain on the root box's pre-activation bounds tightened by
alpha-CROWN per layer (slopes of the earlier relus optimised per bound), and its leaves' proofs lean
on them; the checker's plain CROWN is looser. The slopes alpha-CROWN found stay inside the verifier's
bound code, so the writer optimises its own set the same way (Adam on (upper - lower), the best
iterate per bound kept) and the certificate carries them, once per property: per relu layer t >= 1,
the neurons unstable on the root box and, per earlier relu layer, a (2R, width) table of lower slopes
(R rows for the lower bounds, then R for the upper ones). The checker takes any slopes in [0, 1].
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

Slopes = tuple[tuple[int, np.ndarray, tuple[np.ndarray, ...]], ...]  # (relu layer t, rows, per earlier layer)


def intermediate_slopes(graph: Any, lower: Any, upper: Any, iterations: int = 30, lr: float = 0.1) -> Slopes:
    """Optimised slopes for the bounds of every relu layer's unstable pre-activations (all but the first)."""
    import torch

    from verifier.bounds.adam import Adam
    from verifier.bounds.box import input_box
    from verifier.bounds.backward import bound_rows
    from verifier.bounds.crown import relaxed_inputs, unit_rows
    from verifier.bounds.layerwise import layer_bounds
    from verifier.bounds.ops import default_relu_alpha

    g = graph.to(lower.device, torch.float64)
    xl, xu = lower.reshape(1, -1).double(), upper.reshape(1, -1).double()
    relaxed = relaxed_inputs(g)
    layers = list(relaxed)
    relu_of = {src: [c.name for c in cs] for src, cs in relaxed.items()}
    if any(len(v) != 1 for v in relu_of.values()):
        return ()
    boxes = dict(layer_bounds(g, xl, xu, layers, None, -1, None, optimise=(iterations, lr, math.inf)))
    boxes[g.input_name] = input_box(g, xl, xu)
    plain = layer_bounds(g, xl, xu, layers, None, -1, None)  # the rows: unstable under CROWN, as the checker starts
    out = []
    for t in range(1, len(layers)):
        node = g.by_name[layers[t]]
        l, u = (x.flatten(1) for x in plain[layers[t]])
        rows = ((l < 0) & (u > 0))[0].nonzero().flatten()
        if rows.numel() == 0:
            continue
        R = rows.numel()
        earlier = [relu_of[layers[j]][0] for j in range(t)]
        alphas = {}
        for j, relu in enumerate(earlier):
            a = default_relu_alpha(*boxes[layers[j]]).unsqueeze(1)
            alphas[relu] = a.expand((1, 2 * R) + a.shape[2:]).clone().requires_grad_(True)
        best = {r: a.detach().clone() for r, a in alphas.items()}
        eye = unit_rows(rows, l.shape[1], l).reshape((1, R) + node.shape)
        best_l = torch.full((R,), -math.inf, dtype=torch.float64)
        best_u = torch.full((R,), math.inf, dtype=torch.float64)
        opt = Adam([(list(alphas.values()), lr)])
        for it in range(iterations + 1):
            lb, ub = bound_rows(g, node.name, eye, boxes, {g.input_name}, alphas)
            with torch.no_grad():
                better = torch.cat([lb[0] > best_l, ub[0] < best_u])
                best_l, best_u = torch.maximum(best_l, lb[0]), torch.minimum(best_u, ub[0])
                for r, a in alphas.items():
                    mask = better.view((1, -1) + (1,) * (a.dim() - 2))
                    best[r] = torch.where(mask, a.detach(), best[r])
            if it == iterations:
                break
            opt.zero_grad()
            (ub - lb).sum().backward()
            opt.step()
            with torch.no_grad():
                for a in alphas.values():
                    a.clamp_(0.0, 1.0)
        out.append((t, rows.cpu().numpy().astype(np.int64),
                    tuple(best[r][0].reshape(2 * R, -1).cpu().numpy().astype(np.float32) for r in earlier)))
    return tuple(out)
