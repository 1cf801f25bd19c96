"""The proved domains of one ReLU-split search, collected as it runs (for `verify --certificate`).

`relu_split_bab` tells the recorder every domain it proves: the domain's split decisions, the row
(a clause row, an average of rows, or a learned mixture) whose bound closed it, and that row's relu
slopes (alpha) and split multipliers (beta). Only the leaves are kept, not the search's tree: the
tree is rebuilt from the leaves' decision sets (`tree`), which keeps the hook in relu_split small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class ReluLeaf:
    """One proved domain: its decisions (layer, neuron, sign +1 active / -1 inactive), the weights of
    the clause rows that closed it, and (unless empty) the slopes per relu layer and the multipliers
    of its decisions (aligned with `decisions`)."""

    decisions: tuple[tuple[int, int, int], ...]
    weights: np.ndarray  # (k0,) >= 0
    empty: bool
    alphas: tuple[np.ndarray, ...]  # per relu layer (width,) float32
    betas: np.ndarray  # (len(decisions),) float32


class ReluSplitRecorder:
    """The proved leaves of one (property, clause) search."""

    def __init__(self) -> None:
        self.leaves: list[ReluLeaf] = []
        self.layers: list[str] = []
        self.relus: list[str] = []  # the relu node of each layer (its input is layers[j])
        self.mixture = np.zeros((0, 0))

    def begin(self, layers: list[str], relu_of: dict[str, str], k0: int, mix_rows: bool) -> None:
        """The search's relu input nodes (in order), its relu -> input map and its rows: the k0 clause
        rows, then (mix_rows) their pairwise averages and mean, as `with_convex_mixtures` adds them."""
        self.layers = list(layers)
        by_input = {src: relu for relu, src in relu_of.items()}
        self.relus = [by_input[name] for name in layers]
        rows = [np.eye(k0)]
        if mix_rows and k0 >= 2:
            eye = np.eye(k0)
            rows.append(np.array([(eye[i] + eye[j]) / 2 for i in range(k0) for j in range(i + 1, k0)]))
            if k0 > 2:
                rows.append(np.full((1, k0), 1.0 / k0))
        self.mixture = np.concatenate(rows)

    def proved(self, signs: dict[str, Any], b: Any, idx: Any, rows: Any) -> None:
        """Domains `idx` of a bounded batch `b` (relu_split._Bounded) are proved by their rows `rows`
        (indices into the batch's rows, the whole batch's (N,)); `signs` the batch's decisions."""
        idx_np = idx.detach().cpu().numpy()
        row = rows.detach().cpu().numpy()[idx_np]
        empty = b.empty.detach().cpu().numpy()[idx_np]
        mix = None if b.mix_weights is None else b.mix_weights.detach().cpu().double().numpy()[idx_np]
        sign = [signs[n].detach().cpu().numpy()[idx_np].reshape(idx_np.size, -1) for n in self.layers]
        pick = rows[idx].view(-1, 1)

        def take(t: Any) -> np.ndarray:  # (N, k, *shape) -> the proving row's (len(idx), width)
            t = t[idx]
            return t.gather(1, pick.view((-1, 1) + (1,) * (t.dim() - 2)).expand((-1, 1) + t.shape[2:])) \
                .flatten(1).detach().cpu().double().numpy()

        alpha = [take(b.alpha[r]).astype(np.float32) for r in self.relus]
        beta = [take(b.beta[n]).astype(np.float32) if n in b.beta else np.zeros_like(alpha[j])
                for j, n in enumerate(self.layers)]
        for i in range(idx_np.size):
            where = [(j, int(c), int(sign[j][i, c])) for j in range(len(self.layers)) for c in np.nonzero(sign[j][i])[0]]
            r = int(row[i])
            if r < self.mixture.shape[0]:
                weights = self.mixture[r]
            elif mix is not None:
                weights = mix[i]
            else:
                raise ValueError(f"row {r} of a proved domain is neither a clause row nor a mixture")
            betas = np.array([max(0.0, float(beta[j][i, c])) for j, c, _ in where], np.float32)
            self.leaves.append(ReluLeaf(tuple(where), np.asarray(weights, np.float64), bool(empty[i]),
                                        tuple(a[i] for a in alpha), betas))

    def tree(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(layer, neuron) per node in breadth-first order (layer -1: a leaf; the children of the k-th
        split node are nodes 2k+1, active z >= 0, and 2k+2, inactive z <= 0) and the recorded leaf
        behind each tree leaf, in node order. ValueError when the leaves do not make up a tree.

        At a node holding the leaves L (every leaf below it), any neuron decided in every leaf of L and
        not on the path splits it: in the search's tree each such neuron is split below the node in
        every branch, so each sign's leaves again form a tree (drop the neuron's splits, keep its sign's
        child)."""
        if not self.leaves:
            raise ValueError("no proved domain was recorded")
        keys = [{(j, c): s for j, c, s in leaf.decisions} for leaf in self.leaves]
        layer, neuron, order = [], [], []
        level: list[tuple[list[int], frozenset[tuple[int, int]]]] = [(list(range(len(self.leaves))), frozenset())]
        while level:
            nxt = []
            for members, path in level:
                if len(members) == 1 and set(keys[members[0]]) <= path:
                    layer.append(-1)
                    neuron.append(0)
                    order.append(members[0])
                    continue
                common = set(keys[members[0]]) - path
                for m in members[1:]:
                    common &= keys[m].keys()
                    if not common:
                        break
                if not common:
                    raise ValueError(f"{len(members)} proved domains share no split below depth {len(path)}")
                j, c = min(common)  # the earliest layer first (as the search splits most)
                layer.append(j)
                neuron.append(c)
                pos = [m for m in members if keys[m][(j, c)] > 0]
                neg = [m for m in members if keys[m][(j, c)] < 0]
                if not pos or not neg:
                    raise ValueError(f"split ({j}, {c}) has proved domains on one side only")
                nxt.extend([(pos, path | {(j, c)}), (neg, path | {(j, c)})])
            level = nxt
        return np.array(layer, np.int64), np.array(neuron, np.int64), order


def layer_widths(recorder: ReluSplitRecorder) -> Optional[list[int]]:
    """The width of each relu layer, as the recorded slopes have it (None before any leaf)."""
    return [a.shape[0] for a in recorder.leaves[0].alphas] if recorder.leaves else None
