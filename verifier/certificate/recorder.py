"""The split tree of one input-split search, collected as it runs (for `verify --certificate`).

`InputSplitSearch` calls it with the ids of its frontier boxes: every split (box -> two halves),
every clip (a box shrunk to where counterexamples can lie: recorded as splits whose cut-off slabs
are leaves closed by clipping), and every proved box. `tree()` then renumbers the nodes breadth
first, the layout of `verifier.certificate.format`.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from verifier.certificate.format import CLIP as CLIP_KIND
from verifier.certificate.format import LAYER_ALPHA

MISSING = 255


class SplitRecorder:
    """Node ids are assigned in creation order: the root is 0, a split's children get two new ids."""

    def __init__(self) -> None:
        self.count = 1
        self.splits: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []  # parents, dims, points, first child
        self.leaves: list[tuple[np.ndarray, np.ndarray]] = []  # ids, kinds
        self.alpha_ids: list[np.ndarray] = []
        self.alpha_values: list[list[np.ndarray]] = []  # per record, per relu layer (a, rows, width)

    def root(self, like: Any) -> Any:
        """The root's id as a tensor on the device of `like`."""
        import torch

        return torch.zeros(1, dtype=torch.int64, device=like.device)

    def split(self, ids: Any, dims: Any, points: Any) -> tuple[Any, Any]:
        """Record that boxes `ids` split at x[dims] = points; the ids of the lower and upper halves."""
        left, right = self._split(_np(ids).astype(np.int64), _np(dims).astype(np.int64), _np(points).astype(np.float64))
        return _like(left, ids), _like(right, ids)

    def proved(self, ids: Any, kinds: Any, alpha_mask: Any = None, alphas: Optional[Sequence[Any]] = None) -> None:
        """Boxes `ids` are closed, by `kinds` (format codes); those in alpha_mask with the relu slopes
        `alphas` (per relu layer, (mask.sum(), rows, width))."""
        ids_np = _np(ids).astype(np.int64)
        self.leaves.append((ids_np, _np(kinds).astype(np.uint8).reshape(-1)))
        if alpha_mask is not None and alphas is not None and bool(_np(alpha_mask).any()):
            mask = _np(alpha_mask).astype(bool)
            self.alpha_ids.append(ids_np[mask])
            self.alpha_values.append([_np(a).reshape(int(mask.sum()), a.shape[1], -1).astype(np.float32) for a in alphas])

    def clipped(self, ids: Any, l: Any, u: Any, l2: Any, u2: Any, empty: Any, layer_alpha: bool = False) -> Any:
        """Boxes `ids` [l, u] were shrunk to [l2, u2] (or emptied): the cut-off slabs become leaves
        closed by clipping (by linear bounds on layer-wise alpha intermediate bounds when
        `layer_alpha`), and the ids of the shrunk boxes (of the non-empty ones) are returned."""
        ids_np, gone = _np(ids).astype(np.int64), _np(empty).astype(bool)
        CLIP = LAYER_ALPHA if layer_alpha else CLIP_KIND
        self.leaves.append((ids_np[gone], np.full(int(gone.sum()), CLIP, np.uint8)))
        cur = ids_np[~gone].copy()
        lo, hi = _np(l)[~gone], _np(u)[~gone]
        lo2, hi2 = _np(l2)[~gone], _np(u2)[~gone]
        for i in range(lo.shape[1]):
            cut = lo2[:, i] > lo[:, i]
            if cut.any():
                slab, rest = self._split(cur[cut], np.full(int(cut.sum()), i), lo2[cut, i].astype(np.float64))
                self.leaves.append((slab, np.full(slab.shape[0], CLIP, np.uint8)))
                cur[cut] = rest
            cut = hi2[:, i] < hi[:, i]
            if cut.any():
                rest, slab = self._split(cur[cut], np.full(int(cut.sum()), i), hi2[cut, i].astype(np.float64))
                self.leaves.append((slab, np.full(slab.shape[0], CLIP, np.uint8)))
                cur[cut] = rest
        return _like(cur, ids)

    def _split(self, parents: np.ndarray, dims: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = self.count
        self.count += 2 * parents.shape[0]
        self.splits.append((parents, dims, points, first))
        left = first + 2 * np.arange(parents.shape[0])
        return left, left + 1

    def leaf_ids(self) -> np.ndarray:
        """The ids of the leaves, in the breadth-first order of `tree`."""
        return self._layout()[1]

    def _layout(self) -> tuple[np.ndarray, np.ndarray]:
        dim = np.full(self.count, -1, np.int64)
        first = np.full(self.count, -1, np.int64)
        for parents, dims, _, f in self.splits:
            dim[parents] = dims
            first[parents] = f + 2 * np.arange(parents.shape[0])
        order, level = [np.array([0])], np.array([0])
        while level.size:
            inner = level[dim[level] >= 0]
            level = np.stack([first[inner], first[inner] + 1], 1).reshape(-1)
            order.append(level)
        bfs = np.concatenate(order)
        return bfs, bfs[dim[bfs] < 0]

    def tree(self, n_relu_layers: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """(dim, point, kind, alpha_leaf, alphas) in breadth-first order; ValueError if a leaf has no proof."""
        N = self.count
        dim = np.full(N, -1, np.int64)
        point = np.zeros(N)
        first = np.full(N, -1, np.int64)
        for parents, dims, points, f in self.splits:
            dim[parents], point[parents] = dims, points
            first[parents] = f + 2 * np.arange(parents.shape[0])
        kind = np.full(N, MISSING, np.uint8)
        for ids, kinds in self.leaves:
            kind[ids] = kinds
        order, level = [np.array([0])], np.array([0])
        while level.size:
            inner = level[dim[level] >= 0]
            level = np.stack([first[inner], first[inner] + 1], 1).reshape(-1)
            order.append(level)
        bfs = np.concatenate(order)
        leaf_nodes = bfs[dim[bfs] < 0]
        if np.any(kind[leaf_nodes] == MISSING):
            raise ValueError(f"{int((kind[leaf_nodes] == MISSING).sum())} leaves of the split tree were never closed")
        alpha_leaf, alphas = np.zeros(0, np.int64), []
        if self.alpha_ids:
            position = np.full(N, -1, np.int64)
            position[leaf_nodes] = np.arange(leaf_nodes.shape[0])
            ids = np.concatenate(self.alpha_ids)
            alpha_leaf = position[ids]
            alphas = [np.concatenate([rec[j] for rec in self.alpha_values]) for j in range(n_relu_layers)]
            keep = alpha_leaf >= 0  # (a leaf closed with slopes is never split later; kept for safety)
            alpha_leaf, alphas = alpha_leaf[keep], [a[keep] for a in alphas]
        return dim[bfs], point[bfs], kind[leaf_nodes], alpha_leaf, alphas


def _np(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    return x.detach().cpu().double().numpy() if x.is_floating_point() else x.detach().cpu().numpy()


def _like(values: np.ndarray, ids: Any) -> Any:
    import torch

    return torch.as_tensor(values, dtype=torch.int64, device=ids.device)
