"""Tighter pre-activation bounds for MLPs by linear programming over the triangle relaxation (HiGHS).

Why: on deep, wide-eps MLPs (mnist_fc 256x4/256x6 at eps 0.05) branch and bound drowns in unstable
neurons whose CROWN bounds are loose. The LP over the triangle relaxation of all earlier layers at once
is the tightest bound any single-neuron relaxation with these intermediate bounds can give (CROWN and
alpha-CROWN are relaxations of it); solving it layer by layer, each layer's LP using the bounds refined
before it, stabilises neurons CROWN cannot.

Soundness: the solver's answer is never trusted. Each bound is re-derived from the solver's dual by weak
duality in float64 (`lp_dual.dual_bound`, with a rounding margin), the relaxation's rows are loosened by
far more than their float64 rounding, and the result is intersected with the bounds given, rounded
outward to their dtype. A failed or timed-out solve leaves a neuron's bounds as they were.

`highspy` is an optional dependency (`pip install 'verifier[milp]'`), imported only when an LP is solved;
graphs that are not a chain of affine layers and relus are returned unchanged.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import torch

from verifier.bounds.box import Box
from verifier.bounds.lp_dual import BoundedLp, dual_bound
from verifier.model.graph import Graph

Tensor = torch.Tensor

# Relative slack added to rows whose coefficients are computed (composed affine maps, relaxation lines):
# far above float64 rounding, far below anything that changes a bound that matters.
ROW_SLACK = 1e-12
# The MILP's bound comes from HiGHS's branch and bound, whose node LPs meet their tolerances (1e-7 on
# primal and dual feasibility) only: it is accepted less this fraction of (1 + |bound| + the sum of the
# column ranges), a margin well above what those tolerances can move it; unlike the LP's, not a proof.
MIP_MARGIN = 1e-6


@dataclass(frozen=True)
class LpRefineConfig:
    """first_layer: index of the first relu layer refined (the first one's bounds over a box are exact by
    interval arithmetic already); max_layers: how many layers from there (None: all); max_neurons: per layer,
    the most unstable ones first (None: all); threads: HiGHS threads. MILP bounds carry no certificate
    (see MIP_MARGIN): off unless milp_layers > 0."""

    first_layer: int = 1
    max_layers: Optional[int] = None
    max_neurons: Optional[int] = None
    threads: int = 1
    milp_layers: int = 0  # the first this many refined layers by MILP (exact relus before them), not LP
    milp_seconds: float = 5.0  # per MILP solve (its bound so far is used when it stops)
    max_lp_entries: int = 20_000_000  # the LP is held dense (3 copies of 8 bytes an entry): larger layers stop


@dataclass(frozen=True)
class Affine:
    """One relu layer's pre-activations as an affine map of the previous relu layer's outputs (or the
    flat input): z = W v + b. `composed`: W/b were computed (products of maps), so carry rounding."""

    name: str
    W: np.ndarray
    b: np.ndarray
    composed: bool


@dataclass(frozen=True)
class LayerReport:
    name: str
    unstable_before: int
    unstable_after: int
    solved: int  # LPs solved to optimality
    seconds: float


@dataclass(frozen=True)
class RefineReport:
    """What refinement did, per refined layer (and per box of the batch, in order)."""

    layers: tuple[LayerReport, ...]
    complete: bool  # False when the deadline stopped it early

    @property
    def unstable_before(self) -> int:
        return sum(r.unstable_before for r in self.layers)

    @property
    def unstable_after(self) -> int:
        return sum(r.unstable_after for r in self.layers)


def affine_chain(graph: Graph, names: list[str]) -> Optional[list[Affine]]:
    """The graph as input -> affine -> relu -> affine -> relu ... up to the last relu, each relu input one
    of `names` (in order); None when it is anything else (branches, other nonlinearities, convolutions)."""
    layers: list[Affine] = []
    W: Optional[np.ndarray] = None  # None: identity on the previous layer's outputs
    b = np.zeros(graph.n_inputs)
    composed = False
    prev: Optional[str] = None
    for node in graph.nodes:
        if len(layers) == len(names):
            break  # what follows the last relu does not matter here
        if node.op == "input":
            prev = node.name
            continue
        if tuple(node.inputs) != (prev,):
            return None
        if node.op == "reshape":
            pass  # row-major: the flat vector is unchanged
        elif node.op == "scale_shift":
            shape = graph.by_name[prev].shape
            s = torch.broadcast_to(node.params["scale"].double().cpu(), shape).flatten().numpy()
            t = torch.broadcast_to(node.params["shift"].double().cpu(), shape).flatten().numpy()
            W = np.diag(s) if W is None else s[:, None] * W
            b, composed = s * b + t, True
        elif node.op == "linear":
            Wn = node.params["W"].double().cpu().numpy()
            bn = node.params["b"].double().cpu().numpy() if "b" in node.params else np.zeros(Wn.shape[0])
            composed = composed or W is not None or bool(np.any(b != 0))
            W, b = (Wn if W is None else Wn @ W), Wn @ b + bn
        elif node.op == "relu":
            if prev != names[len(layers)] or W is None:
                return None
            layers.append(Affine(prev, W, b, composed))
            W, b, composed = None, np.zeros(math.prod(node.shape)), False
        else:
            return None
        prev = node.name
    return layers if len(layers) == len(names) else None


@dataclass(frozen=True)
class _LayerLp:
    """The LP over the input and the first k relu layers (columns x, then z_j, a_j per layer j < k), whose
    objective is a row of layer k's map on a_{k-1}."""

    lp: BoundedLp
    objective_cols: np.ndarray  # the columns of a_{k-1} (or of x when k = 0)
    integer_cols: np.ndarray  # the relu indicators (MILP), after every other column; empty for the LP


def _relaxation_lp(chain: list[Affine], k: int, xl: np.ndarray, xu: np.ndarray,
                   lo: list[np.ndarray], hi: list[np.ndarray], exact: bool = False) -> _LayerLp:
    """The triangle relaxation of layers < k; with `exact`, each unstable relu also gets an indicator
    d in {0, 1} with a <= u d and a <= z - l (1 - d), which makes it exact (a MILP)."""
    n0 = xl.size
    widths = [layer.b.size for layer in chain[:k]]
    n_int = sum(int(((lo[j] < 0) & (hi[j] > 0)).sum()) for j in range(k)) if exact else 0
    ncols = n0 + 2 * sum(widths) + n_int
    integer_cols = np.arange(ncols - n_int, ncols)
    next_int = ncols - n_int
    col_lower, col_upper = np.empty(ncols), np.empty(ncols)
    col_lower[:n0], col_upper[:n0] = xl, xu
    col_lower[integer_cols], col_upper[integer_cols] = 0.0, 1.0
    rows: list[np.ndarray] = []
    row_lower: list[np.ndarray] = []
    row_upper: list[np.ndarray] = []
    prev = np.arange(n0)
    offset = n0
    for j in range(k):
        m, layer = widths[j], chain[j]
        z, a = np.arange(offset, offset + m), np.arange(offset + m, offset + 2 * m)
        offset += 2 * m
        l, u = lo[j], hi[j]
        col_lower[z], col_upper[z] = l, u
        col_lower[a], col_upper[a] = np.maximum(l, 0.0), np.maximum(u, 0.0)
        # z = W prev + b, with slack for the rounding of composed maps
        block = np.zeros((m, ncols))
        block[:, z] = np.eye(m)
        block[:, prev] = -layer.W
        slack = ROW_SLACK * (np.abs(layer.W) @ np.maximum(np.abs(col_lower[prev]), np.abs(col_upper[prev]))
                             + np.abs(layer.b)) if layer.composed else 0.0
        rows.append(block)
        row_lower.append(layer.b - slack)
        row_upper.append(layer.b + slack)
        active, unstable = l >= 0, (l < 0) & (u > 0)
        # active: a = z; inactive: a = 0 by its column bounds; unstable: a >= z and a <= s z + t
        idx = np.nonzero(active | unstable)[0]
        block = np.zeros((idx.size, ncols))
        block[np.arange(idx.size), a[idx]] = 1.0
        block[np.arange(idx.size), z[idx]] = -1.0
        rows.append(block)
        row_lower.append(np.zeros(idx.size))
        row_upper.append(np.where(active[idx], 0.0, np.inf))
        idx = np.nonzero(unstable)[0]
        s = u[idx] / (u[idx] - l[idx])
        t = -s * l[idx]
        t = t + ROW_SLACK * (np.abs(s) * np.maximum(-l[idx], u[idx]) + np.abs(t))  # the chord stays above
        block = np.zeros((idx.size, ncols))
        block[np.arange(idx.size), a[idx]] = 1.0
        block[np.arange(idx.size), z[idx]] = -s
        rows.append(block)
        row_lower.append(np.full(idx.size, -np.inf))
        row_upper.append(t)
        if exact and idx.size:  # a - u d <= 0 and a - z - l d <= -l: exact coefficients, no rounding
            d = np.arange(next_int, next_int + idx.size)
            next_int += idx.size
            r = np.arange(idx.size)
            block = np.zeros((2 * idx.size, ncols))
            block[r, a[idx]], block[r, d] = 1.0, -u[idx]
            block[idx.size + r, a[idx]], block[idx.size + r, z[idx]] = 1.0, -1.0
            block[idx.size + r, d] = -l[idx]
            rows.append(block)
            row_lower.append(np.full(2 * idx.size, -np.inf))
            row_upper.append(np.concatenate([np.zeros(idx.size), -l[idx]]))
        prev = a
    A = np.concatenate(rows) if rows else np.zeros((0, ncols))
    lp = BoundedLp(A, np.concatenate(row_lower) if rows else np.zeros(0),
                   np.concatenate(row_upper) if rows else np.zeros(0), col_lower, col_upper)
    return _LayerLp(lp, prev, integer_cols)


def _quiet_highs(highspy) -> "highspy.Highs":
    """A silent Highs instance. The first one in a process prints a banner on fd 1 from C++, which would
    corrupt `--json` and VNN-LIB standard output: fd 1 points at /dev/null while it is made."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


class _Solver:
    """One HiGHS instance on one LP (re-solved from its last basis for each new objective) or MILP."""

    def __init__(self, lp: BoundedLp, threads: int, integer_cols: Optional[np.ndarray] = None,
                 seconds_per_solve: float = math.inf) -> None:
        import highspy

        self.highspy = highspy
        self.lp = lp
        self.mip = integer_cols is not None and integer_cols.size > 0
        self.seconds_per_solve = seconds_per_solve
        h = _quiet_highs(highspy)
        h.setOptionValue("threads", threads)
        if not self.mip:
            h.setOptionValue("presolve", "off")  # keep the basis between objectives (warm starts)
        model = highspy.HighsLp()
        rows, cols = lp.A.shape
        model.num_col_, model.num_row_ = cols, rows
        model.col_cost_ = np.zeros(cols)
        model.col_lower_, model.col_upper_ = lp.col_lower, lp.col_upper
        inf = highspy.kHighsInf
        model.row_lower_ = np.where(np.isfinite(lp.row_lower), lp.row_lower, -inf)
        model.row_upper_ = np.where(np.isfinite(lp.row_upper), lp.row_upper, inf)
        r, c = np.nonzero(lp.A)
        model.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        model.a_matrix_.start_ = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=rows))]).astype(np.int32)
        model.a_matrix_.index_ = c.astype(np.int32)
        model.a_matrix_.value_ = lp.A[r, c]
        h.passModel(model)
        if self.mip:
            h.changeColsIntegrality(integer_cols.size, integer_cols.astype(np.int32),
                                    np.full(integer_cols.size, highspy.HighsVarType.kInteger))
        self.h = h
        self.cols: Optional[np.ndarray] = None

    def minimum(self, cols: np.ndarray, weights: np.ndarray, deadline: float) -> Optional[float]:
        """A certified lower bound of weights·v[cols] over the LP, or None (solve failed, time ran out)."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        h = self.h
        if self.cols is not None and not np.array_equal(self.cols, cols):
            h.changeColsCost(self.cols.size, self.cols.astype(np.int32), np.zeros(self.cols.size))
        h.changeColsCost(cols.size, cols.astype(np.int32), weights.astype(np.float64))
        self.cols = cols
        h.setOptionValue("time_limit", float(min(left, self.seconds_per_solve)))
        h.run()
        if self.mip:
            return self._mip_bound()
        if h.getModelStatus() != self.highspy.HighsModelStatus.kOptimal:
            return None
        y = np.asarray(h.getSolution().row_dual, dtype=np.float64)
        cost = np.zeros(self.lp.A.shape[1])
        cost[cols] = weights
        bound = dual_bound(self.lp, cost, y)
        return bound if np.isfinite(bound) else None


    def _mip_bound(self) -> Optional[float]:
        """HiGHS's MIP dual bound (valid when stopped early too), less MIP_MARGIN: no certificate here."""
        status = self.h.getModelStatus()
        ok = (self.highspy.HighsModelStatus.kOptimal, self.highspy.HighsModelStatus.kTimeLimit)
        if status not in ok:
            return None
        bound = float(self.h.getInfo().mip_dual_bound)
        if not np.isfinite(bound):
            return None
        ranges = float((self.lp.col_upper - self.lp.col_lower).sum())
        return bound - MIP_MARGIN * (1.0 + abs(bound) + ranges)


def _lp_entries(chain: list[Affine], k: int, lo: list[np.ndarray], hi: list[np.ndarray]) -> int:
    """Rows x columns of layer k's LP (MILP: a little more), held dense: the memory guard's measure."""
    cols = chain[0].W.shape[1] + 2 * sum(layer.b.size for layer in chain[:k])
    rows = sum(layer.b.size + 2 * int((hi[j] > 0).sum()) for j, layer in enumerate(chain[:k]))
    return rows * cols


def _outward(values: np.ndarray, like: Tensor, down: bool) -> Tensor:
    """float64 values in like's dtype, rounded down (lower bounds) or up (upper bounds)."""
    exact = torch.from_numpy(values).to(like.device)
    out = exact.to(like.dtype)
    if like.dtype != torch.float64:
        away = torch.full_like(out, -math.inf if down else math.inf)
        wrong = out.double() > exact if down else out.double() < exact
        out = torch.where(wrong, torch.nextafter(out, away), out)
    return out


def refine_bounds_report(graph: Graph, lower: Tensor, upper: Tensor, boxes: Mapping[str, Box], deadline: float,
                         config: LpRefineConfig = LpRefineConfig()) -> tuple[dict[str, Box], RefineReport]:
    """`refine_bounds` with a report of what it did (unstable neurons per layer before and after)."""
    names = list(boxes)
    out = {name: (l, u) for name, (l, u) in boxes.items()}
    chain = affine_chain(graph, names)
    if chain is None or not names:
        return out, RefineReport((), True)
    batch = next(iter(boxes.values()))[0].shape[0]
    XL = lower.reshape(batch if lower.numel() > graph.n_inputs else 1, -1).double().cpu().numpy()
    XU = upper.reshape(batch if upper.numel() > graph.n_inputs else 1, -1).double().cpu().numpy()
    last = len(chain) if config.max_layers is None else min(len(chain), config.first_layer + config.max_layers)
    reports: list[LayerReport] = []
    complete = True
    for i in range(batch):
        xl, xu = XL[min(i, XL.shape[0] - 1)], XU[min(i, XU.shape[0] - 1)]
        lo = [out[n][0][i].double().flatten().cpu().numpy().copy() for n in names]
        hi = [out[n][1][i].double().flatten().cpu().numpy().copy() for n in names]
        for k in range(max(config.first_layer, 0), last):
            began = time.monotonic()
            unstable = np.nonzero((lo[k] < 0) & (hi[k] > 0))[0]
            before = unstable.size
            if before == 0:
                reports.append(LayerReport(names[k], 0, 0, 0, 0.0))
                continue
            if time.monotonic() > deadline or _lp_entries(chain, k, lo, hi) > config.max_lp_entries:
                complete = False  # out of time, or the dense LP would be too large: stop at this layer
                break
            order = unstable[np.argsort(-np.minimum(-lo[k][unstable], hi[k][unstable]), kind="stable")]
            if config.max_neurons is not None:
                order = order[: config.max_neurons]
            exact = k < config.first_layer + config.milp_layers
            layer_lp = _relaxation_lp(chain, k, xl, xu, lo, hi, exact)
            solver = _Solver(layer_lp.lp, config.threads, layer_lp.integer_cols,
                             config.milp_seconds if exact else math.inf)
            W, b = chain[k].W, chain[k].b
            solved = 0
            for j in order:
                low = solver.minimum(layer_lp.objective_cols, W[j], deadline)
                high = solver.minimum(layer_lp.objective_cols, -W[j], deadline)
                if low is not None:
                    value = low + b[j]
                    lo[k][j] = max(lo[k][j], value - ROW_SLACK * (abs(low) + abs(b[j])))
                    solved += 1
                if high is not None:
                    value = -high + b[j]
                    hi[k][j] = min(hi[k][j], value + ROW_SLACK * (abs(high) + abs(b[j])))
                    solved += 1
                if time.monotonic() > deadline:
                    complete = False
                    break
            after = int(((lo[k] < 0) & (hi[k] > 0)).sum())
            reports.append(LayerReport(names[k], before, after, solved, time.monotonic() - began))
            if not complete:
                break
        for k, name in enumerate(names):
            l, u = out[name]
            shape = l.shape[1:]
            nl = torch.maximum(l[i], _outward(lo[k], l, down=True).reshape(shape))
            nu = torch.minimum(u[i], _outward(hi[k], u, down=False).reshape(shape))
            out[name] = (l.index_copy(0, torch.tensor([i], device=l.device), nl.unsqueeze(0)),
                         u.index_copy(0, torch.tensor([i], device=u.device), nu.unsqueeze(0)))
        if not complete:
            break
    return out, RefineReport(tuple(reports), complete)


def refine_bounds(graph: Graph, lower: Tensor, upper: Tensor, boxes: Mapping[str, Box], deadline: float,
                  config: LpRefineConfig = LpRefineConfig()) -> dict[str, Box]:
    """The pre-activation boxes of an MLP's relu layers, tightened by LP where time allows.

    graph: the network; lower/upper: the input box, flat ((n,) or (B, n)); boxes: relu input node name ->
    (lower, upper) of shape (B, *shape), in topological order (as `layer_bounds` returns them); deadline: a
    time.monotonic() value. Layer by layer from `config.first_layer`, each unstable neuron's min and max
    over the triangle relaxation of the layers before it (with their refined bounds) and the input box.
    Every returned box lies inside the one given. Needs highspy when there is work to do."""
    return refine_bounds_report(graph, lower, upper, boxes, deadline, config)[0]
