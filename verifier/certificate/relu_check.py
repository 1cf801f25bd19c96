"""The independent checker's part for ReLU-split roots (numpy only, no verifier bound code).

A ReLU-split root covers the property's box by sign decisions on relu pre-activations z: every split
node has both children (z >= 0 and z <= 0, by the tree's layout), so every point of the box meets the
decisions of some leaf. Per leaf (batched), on the points of the box that meet its decisions:
- pre-activation bounds by the checker's own IBP / CROWN (rigorous float64), each relu input's bounds
  clipped at 0 by the leaf's decisions before later layers use them; crossing bounds: the leaf is empty;
- else a linear lower bound of the leaf's objective weights @ (C y + d), back-substituted with the
  checker's three slope sets and, where the leaf carries them, its slopes alpha (checked to lie in
  [0, 1]) and multipliers beta (checked >= 0): with decision s_j z_j >= 0 on the leaf, the objective is
  at least itself minus sum_j beta_j s_j z_j, whose coefficient on z_j is the objective's minus
  beta_j s_j. Computed in floating point, fl(a - beta_j s_j) moves a by a real multiple beta'_j s_j
  with beta'_j >= 0 (rounding is monotone), so the bound stays sound with no error term.
A leaf is proved when the best of these is positive; otherwise the certificate is invalid at it.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from verifier.certificate.checker import SLOPES, Invalid, _back_through, _backward, _crown_intermediate, _slopes
from verifier.certificate.format import KINDS, RELU_BETA, RELU_CROWN, RELU_EMPTY, ReluRootProof
from verifier.certificate.network import Affine, Chain, Layer, Relu
from verifier.certificate.rigorous import LinearBound

CHUNK = 64  # leaves bounded together (CROWN on wide inputs holds (leaves, 2 x width, inputs) arrays)


Prior = list[Optional[tuple[np.ndarray, np.ndarray]]]


def root_prior(chain: Chain, lower: np.ndarray, upper: np.ndarray, slopes: tuple, p: int) -> Optional[Prior]:  # type: ignore[type-arg]
    """Pre-activation bounds on property p's whole box (per relu layer, (1, width) or None) from the
    certificate's slopes for them, each layer's on the bounds of the layers before it; Invalid if
    the slopes do not fit the model or lie outside [0, 1]."""
    if not slopes:
        return None
    widths = chain.relu_widths
    relu_at = [t for t, layer in enumerate(chain.layers) if isinstance(layer, Relu)]
    prior: Prior = [None] * len(widths)
    lo, hi = np.asarray(lower, np.float64)[None], np.asarray(upper, np.float64)[None]
    for t, rows, tables in sorted(slopes, key=lambda e: e[0]):
        R = rows.shape[0]
        if not 1 <= t < len(widths) or rows.ndim != 1 or np.any(rows < 0) or np.any(rows >= widths[t]) or \
                len(tables) != t or any(a.shape != (2 * R, widths[j]) for j, a in enumerate(tables)):
            raise Invalid(f"property {p}: the pre-activation slopes of relu layer {t} do not fit the model")
        if not all(np.all(np.isfinite(a)) and np.all(a >= 0) and np.all(a <= 1) for a in tables):
            raise Invalid(f"property {p}: a pre-activation slope of relu layer {t} is outside [0, 1]")
        with np.errstate(invalid="ignore", over="ignore"):
            bounds = _crown_intermediate(chain.layers, lo, hi, prior=prior)
            eye = np.eye(widths[t])[rows]
            lin = _backward(chain.layers, bounds, relu_at[t], np.vstack([eye, -eye]), [a[None] for a in tables])
            both = lin.box_minimum(lo, hi)[0]
        l, h = bounds[relu_at[t]][0].copy(), bounds[relu_at[t]][1].copy()
        l[0, rows] = np.maximum(l[0, rows], both[:R])
        h[0, rows] = np.minimum(h[0, rows], -both[R:])
        prior[t] = (l, h)
    return prior


def check_relu_root(chain: Chain, lower: np.ndarray, upper: np.ndarray, C: np.ndarray, d: np.ndarray,
                    root: ReluRootProof, first_leaf: int, chunk: int = CHUNK, prior: Optional[Prior] = None) -> None:
    """Raise Invalid unless every leaf of `root` is proved (leaves numbered from first_leaf); `prior`:
    bounds on the whole box (root_prior)."""
    where = f"property {root.property}, clause {root.clause}"
    widths = chain.relu_widths
    paths = leaf_paths(root, widths, where)
    n = len(paths)
    if root.kind.shape != (n,):
        raise Invalid(f"{where}: {root.kind.shape[0]} leaf kinds for {n} leaves")
    bad_kind = np.nonzero(~np.isin(root.kind, (RELU_CROWN, RELU_BETA, RELU_EMPTY)))[0]
    if bad_kind.size:
        raise Invalid(f"leaf {first_leaf + int(bad_kind[0])} ({where}): kind {int(root.kind[bad_kind[0]])} "
                      "is not one of a relu-split leaf")
    w = root.weights
    if w.shape != (n, C.shape[0]):
        raise Invalid(f"{where}: the leaf weights must be ({n}, {C.shape[0]}), not {w.shape}")
    bad = np.nonzero(~(np.all(np.isfinite(w), 1) & np.all(w >= 0, 1) & (w.sum(1) > 0)))[0]
    if bad.size:
        raise Invalid(f"leaf {first_leaf + int(bad[0])} ({where}): its row weights must be nonnegative, finite, "
                      "not all zero")
    alphas, betas = _parameters(root, paths, widths, where, first_leaf)
    layers: tuple[Layer, ...] = chain.layers + (Affine(np.asarray(C, np.float64), np.asarray(d, np.float64)),)
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    for at, signs, inherited in leaf_batches(layers, root, widths, lo, hi, prior, chunk):
        has = root.kind[at] == RELU_BETA
        a = None if not has.any() else [t[at] for t in alphas]
        b = None if not has.any() else [t[at] for t in betas]
        margin = leaf_margins(layers, np.broadcast_to(lo, (at.size, lo.size)).copy(),
                              np.broadcast_to(hi, (at.size, hi.size)).copy(), signs, w[at], a, b, has, inherited)
        fail = np.nonzero(~(margin > 0))[0]
        if fail.size:
            i = int(at[fail[0]])
            raise Invalid(f"leaf {first_leaf + i} ({where}, leaf {i} of the root, {len(paths[i])} decisions): best "
                          f"bound {margin[fail[0]]:.3g} <= 0, not proved (closed by the verifier by "
                          f"{KINDS[int(root.kind[i])]})")


def leaf_batches(layers: tuple[Layer, ...], root: ReluRootProof, widths: list[int], lo: np.ndarray, hi: np.ndarray,
                 prior: Optional[Prior], chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, list[np.ndarray], Prior]]:
    """The leaves in batches, level by level from the root: (their indices in node order, their decisions'
    signs per relu layer (B, width), the pre-activation bounds they inherit (their parent's)).

    Every node's bounds are its own (CROWN with its decisions' clamps) intersected with its parent's,
    which hold on the parent's domain and so on the node's: a split's child keeps what its ancestors'
    bounds knew (CROWN on a child alone can be looser, as its relaxation is over the whole box)."""
    internal = root.layer >= 0
    rank = np.cumsum(internal) - 1
    leaf_index = np.cumsum(~internal) - 1
    relu_at = [t for t, layer in enumerate(layers) if isinstance(layer, Relu)]
    nodes = np.array([0])
    signs = [np.zeros((1, wd), np.int8) for wd in widths]
    start: Prior = [None if prior is None or prior[j] is None else prior[j] for j in range(len(widths))]
    inherited = [None if b is None else (b[0].reshape(1, -1), b[1].reshape(1, -1)) for b in start]
    while nodes.size:
        inner = internal[nodes]
        leaves = np.nonzero(~inner)[0]
        for k in range(0, leaves.size, chunk):
            sel = leaves[k:k + chunk]
            yield leaf_index[nodes[sel]], [s[sel] for s in signs], _take(inherited, sel)
        split = np.nonzero(inner)[0]
        if not split.size:
            break
        own: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in widths]
        for k in range(0, split.size, chunk):
            sel = split[k:k + chunk]
            with np.errstate(invalid="ignore", over="ignore"):
                bounds = _crown_intermediate(layers, np.tile(lo, (sel.size, 1)), np.tile(hi, (sel.size, 1)),
                                             ("adaptive",), [s[sel] for s in signs], _take(inherited, sel))
            for j, t in enumerate(relu_at):
                own[j].append(bounds[t])
        parent = [(np.concatenate([b[0] for b in o]), np.concatenate([b[1] for b in o])) for o in own]
        # children: the active ones (2 rank + 1) of every split node, then the inactive ones
        n_split = nodes[split]
        nodes = np.concatenate([2 * rank[n_split] + 1, 2 * rank[n_split] + 2])
        signs = [np.concatenate([s[split], s[split]]) for s in signs]
        lay, neu = root.layer[n_split], root.neuron[n_split]
        half = n_split.size
        for j in range(len(widths)):
            at = np.nonzero(lay == j)[0]
            signs[j][at, neu[at]] = 1
            signs[j][half + at, neu[at]] = -1
        inherited = [(np.concatenate([l, l]), np.concatenate([h, h])) for l, h in parent]
    return


def _take(prior: Prior, sel: np.ndarray) -> Prior:
    return [None if b is None else (b[0][sel] if b[0].shape[0] > 1 else b[0], b[1][sel] if b[1].shape[0] > 1 else b[1])
            for b in prior]


def leaf_paths(root: ReluRootProof, widths: list[int], where: str) -> list[list[tuple[int, int, int]]]:
    """Each leaf's decisions (layer, neuron, sign), root first, in node order; Invalid if the tree is malformed."""
    layer, neuron = root.layer, root.neuron
    N = layer.shape[0]
    internal = layer >= 0
    if N == 0 or neuron.shape[0] != N or N != 2 * int(internal.sum()) + 1:
        raise Invalid(f"{where}: the split tree is malformed ({N} nodes, {int(internal.sum())} splits)")
    if np.any(layer < -1) or np.any(layer >= len(widths)):
        raise Invalid(f"{where}: the split tree names a relu layer out of range (the model has {len(widths)})")
    if internal.any():
        limit = np.asarray(widths)[layer[internal]]
        if np.any(neuron[internal] < 0) or np.any(neuron[internal] >= limit):
            raise Invalid(f"{where}: the split tree names a neuron out of its layer's range")
    rank = np.cumsum(internal) - 1
    parent = np.full(N, -1, np.int64)
    split = np.nonzero(internal)[0]
    parent[2 * rank[split] + 1] = split
    parent[2 * rank[split] + 2] = split
    if np.any(2 * rank[split] + 1 <= split):
        raise Invalid(f"{where}: the split tree is not in breadth-first order")
    paths = []
    for leaf in np.nonzero(~internal)[0]:
        path, node = [], int(leaf)
        while node:
            up = int(parent[node])
            path.append((int(layer[up]), int(neuron[up]), 1 if node == 2 * rank[up] + 1 else -1))
            node = up
        paths.append(path[::-1])
    return paths


def _parameters(root: ReluRootProof, paths: list[list[tuple[int, int, int]]], widths: list[int], where: str,
                first_leaf: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per relu layer, slopes (leaves, width) and signed multipliers beta * s (leaves, width), zero where
    a leaf carries none; Invalid (naming the leaf) when one is out of range."""
    n = len(paths)
    idx = root.alpha_leaf
    carries = np.nonzero(root.kind == RELU_BETA)[0]
    if idx.shape != carries.shape or np.any(idx != carries):
        raise Invalid(f"{where}: the leaves carrying slopes ({idx.size}) are not those of kind {RELU_BETA}")
    if idx.size and (len(root.alphas) != len(widths) or any(a.shape != (idx.size, wd) for a, wd in zip(root.alphas, widths))):
        raise Invalid(f"{where}: the relu slopes do not fit the model's relu layers {widths}")
    depth = np.array([len(paths[i]) for i in idx], np.int64)
    if root.beta.shape != (int(depth.sum()),):
        raise Invalid(f"{where}: {root.beta.shape[0]} multipliers for {int(depth.sum())} decisions of the leaves carrying them")
    alphas = [np.zeros((n, wd)) for wd in widths]
    betas = [np.zeros((n, wd)) for wd in widths]
    ends = np.cumsum(depth)
    for k, i in enumerate(idx):
        for j, a in enumerate(root.alphas):
            row = a[k]
            if not (np.all(np.isfinite(row)) and np.all(row >= 0) and np.all(row <= 1)):
                raise Invalid(f"leaf {first_leaf + int(i)} ({where}): a relu slope of layer {j} is outside [0, 1]")
            alphas[j][i] = row
        mine = root.beta[ends[k] - depth[k]:ends[k]]
        if not (np.all(np.isfinite(mine)) and np.all(mine >= 0)):
            raise Invalid(f"leaf {first_leaf + int(i)} ({where}): a split multiplier (beta) is negative or not finite")
        for (j, c, s), value in zip(paths[i], mine):
            betas[j][i, c] += value * s
    return alphas, betas


def leaf_margins(layers: tuple[Layer, ...], lo: np.ndarray, hi: np.ndarray, signs: list[np.ndarray],
                 weights: np.ndarray, alphas: Optional[list[np.ndarray]], betas: Optional[list[np.ndarray]],
                 has: np.ndarray, prior: Optional[Prior] = None) -> np.ndarray:
    """Per leaf, a rigorous lower bound of weights @ (C y + d) on the points of the box meeting its
    decisions (+inf: none does); > 0 proves the leaf."""
    margin = np.full(lo.shape[0], -np.inf)
    for intermediate in (("adaptive",), SLOPES):
        open_ = np.nonzero(~(margin > 0))[0]
        if not open_.size:
            break
        with np.errstate(invalid="ignore", over="ignore"):
            bounds = _crown_intermediate(layers, lo[open_], hi[open_], intermediate, [s[open_] for s in signs],
                                         None if prior is None else _take(prior, open_))
            empty = np.zeros(open_.size, bool)
            for t, layer in enumerate(layers):
                if isinstance(layer, Relu):
                    empty |= (bounds[t][0] > bounds[t][1]).any(1)
            best = np.full(open_.size, -np.inf)
            coef = weights[open_][:, None, :]
            for strategy in SLOPES:
                best = np.maximum(best, _objective(layers, bounds, coef, _slopes(layers, bounds, len(layers), strategy),
                                                   None, lo[open_], hi[open_]))
            if alphas is not None and betas is not None and has[open_].any():
                pick = np.nonzero(has[open_])[0]
                at = open_[pick]
                part = [(l[pick], h[pick]) for l, h in bounds]
                value = _objective(layers, part, coef[pick], [a[at][:, None, :] for a in alphas],
                                   [b[at] for b in betas], lo[at], hi[at])
                best[pick] = np.maximum(best[pick], value)
                for strategy in ("adaptive",):  # CROWN's slopes with the multipliers too
                    value = _objective(layers, part, coef[pick], _slopes(layers, part, len(layers), strategy),
                                       [b[at] for b in betas], lo[at], hi[at])
                    best[pick] = np.maximum(best[pick], value)
        best = np.where(empty, np.inf, np.nan_to_num(best, nan=-np.inf))
        margin[open_] = np.maximum(margin[open_], best)
    return margin


def _objective(layers: tuple[Layer, ...], bounds: list[tuple[np.ndarray, np.ndarray]], coef: np.ndarray,
               alphas: Optional[list[np.ndarray]], betas: Optional[list[np.ndarray]], lo: np.ndarray,
               hi: np.ndarray) -> np.ndarray:
    """Rigorous lower bound (B,) of coef @ value[-1] (coef (B, 1, k) >= 0) back through every layer,
    with the relu slopes `alphas` (B, 1, width) (None: CROWN's adaptive) and signed multipliers `betas`."""
    B = lo.shape[0]
    start = LinearBound(coef.copy(), np.zeros((B, 1)), np.zeros((B, 1)))
    return _back_through(layers, bounds, len(layers), start, alphas, betas).box_minimum(lo, hi)[:, 0]
