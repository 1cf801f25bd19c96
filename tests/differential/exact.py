"""Ground truth for the differential test bed.

Piecewise-linear nets (relu, max pool, residual adds): the exact minimum over a box of
max_i (C_i·y + d_i) by a MILP (big-M encoding with interval bounds) solved by HiGHS, an open-source
solver that shares no code with the verifier. Its minimiser is replayed through the float64 forward pass,
so a negative optimum comes with a real counterexample. Other nets (sigmoid, tanh): an upper bound on the
minimum by dense sampling plus a local search, i.e. a lower bound on what is violated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tests.differential.networks import Layer, Net


@dataclass(frozen=True)
class Minimum:
    value: float  # min over the box of max_i (C_i y + d_i): exact (MILP) or an upper bound (sampling)
    x: Optional[np.ndarray]  # a point attaining (about) it
    exact: bool


class _Milp:
    """A thin builder over highspy's column/row interface."""

    def __init__(self, time_limit: float) -> None:
        import highspy

        self.hs = highspy
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("time_limit", float(time_limit))
        self.h.setOptionValue("mip_rel_gap", 1e-6)
        self.h.setOptionValue("mip_abs_gap", 1e-6)
        self.h.setOptionValue("threads", 1)
        self.n = 0

    def var(self, lb: float, ub: float, integer: bool = False, cost: float = 0.0) -> int:
        self.h.addCol(cost, lb, ub, 0, np.array([], dtype=np.int32), np.array([], dtype=np.float64))
        if integer:
            self.h.changeColIntegrality(self.n, self.hs.HighsVarType.kInteger)
        self.n += 1
        return self.n - 1

    def row(self, lo: float, hi: float, idx: list[int], vals: list[float]) -> None:
        self.h.addRow(lo, hi, len(idx), np.array(idx, dtype=np.int32), np.array(vals, dtype=np.float64))

    def tighten(self, xs: list[int], l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the variables xs where they straddle 0, by the LP relaxation of the model so far
        (min and max of each), padded by the LP's tolerance; the MILP's big-M constants shrink with them
        (interval bounds alone make even 50-relu nets take minutes)."""
        l, u = l.copy(), u.copy()
        live = [i for i in range(len(xs)) if l[i] < 0 < u[i]]
        if not live:
            return l, u
        self.h.setOptionValue("solve_relaxation", True)
        for i in live:
            for sign in (1.0, -1.0):
                self.h.changeColCost(xs[i], sign)
                self.h.run()
                if self.h.modelStatusToString(self.h.getModelStatus()) == "Optimal":
                    value = sign * self.h.getInfo().objective_function_value
                    slack = 1e-6 * (1.0 + abs(value))
                    if sign > 0:
                        l[i] = max(l[i], value - slack)
                    else:
                        u[i] = min(u[i], value + slack)
            self.h.changeColCost(xs[i], 0.0)
            self.h.changeColBounds(xs[i], float(l[i]), float(u[i]))
        self.h.setOptionValue("solve_relaxation", False)
        return l, u

    def solve(self) -> Optional[tuple[float, np.ndarray]]:
        self.h.run()
        self.status = self.h.modelStatusToString(self.h.getModelStatus())
        if self.status != "Optimal":
            return None
        return self.h.getInfo().objective_function_value, np.array(self.h.getSolution().col_value)


def _pad(l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds widened a little, so that rounding never cuts off a feasible point."""
    eps = 1e-7 * (1.0 + np.maximum(np.abs(l), np.abs(u)))
    return l - eps, u + eps


def _encode(m: _Milp, layers: list[Layer], xs: list[int], l: np.ndarray, u: np.ndarray,
            ) -> tuple[list[int], np.ndarray, np.ndarray]:
    inf = m.hs.kHighsInf
    for layer in layers:
        if layer.kind == "dense":
            W, b = layer.W, layer.b
            nl = np.clip(W, 0, None) @ l + np.clip(W, None, 0) @ u + b
            nu = np.clip(W, 0, None) @ u + np.clip(W, None, 0) @ l + b
            nl, nu = _pad(nl, nu)
            ys = []
            for i in range(W.shape[0]):
                y = m.var(nl[i], nu[i])
                nz = np.nonzero(W[i])[0]
                m.row(b[i], b[i], [y] + [xs[j] for j in nz], [1.0] + [-W[i, j] for j in nz])
                ys.append(y)
            xs, l, u = ys, nl, nu
        elif layer.kind == "act":
            assert layer.fn == "relu", "only relu nets have an exact MILP"
            l, u = m.tighten(xs, l, u)
            ys = []
            for i, x in enumerate(xs):
                if l[i] >= 0:
                    ys.append(x)
                elif u[i] <= 0:
                    ys.append(m.var(0.0, 0.0))
                else:
                    y, a = m.var(0.0, u[i]), m.var(0.0, 1.0, integer=True)
                    m.row(0.0, inf, [y, x], [1.0, -1.0])  # y >= x
                    m.row(-inf, 0.0, [y, a], [1.0, -u[i]])  # y <= u a
                    m.row(-inf, -l[i], [y, x, a], [1.0, -1.0, -l[i]])  # y <= x - l (1 - a)
                    ys.append(y)
            xs, l, u = ys, np.maximum(l, 0), np.maximum(u, 0)
        elif layer.kind == "maxpool":
            ys, nl, nu = [], [], []
            for group in layer.groups:
                gl, gu = l[group], u[group]
                lo, hi = gl.max(), gu.max()
                y = m.var(lo, hi)
                live = [j for j in range(len(group)) if gu[j] >= lo]
                for j in live:
                    m.row(0.0, inf, [y, xs[group[j]]], [1.0, -1.0])  # y >= x_j
                if len(live) == 1:
                    m.row(0.0, 0.0, [y, xs[group[live[0]]]], [1.0, -1.0])
                else:
                    picks = [m.var(0.0, 1.0, integer=True) for _ in live]
                    m.row(1.0, 1.0, picks, [1.0] * len(picks))
                    for j, a in zip(live, picks):  # y <= x_j + (hi - l_j)(1 - a_j)
                        big = hi - gl[j]
                        m.row(-inf, big, [y, xs[group[j]], a], [1.0, -1.0, big])
                ys.append(y), nl.append(lo), nu.append(hi)
            xs, l, u = ys, np.array(nl), np.array(nu)
        elif layer.kind == "residual":
            bs, bl, bu = _encode(m, layer.body, xs, l, u)
            nl, nu = _pad(l + bl, u + bu)
            ys = []
            for i in range(len(xs)):
                y = m.var(nl[i], nu[i])
                m.row(0.0, 0.0, [y, xs[i], bs[i]], [1.0, -1.0, -1.0])
                ys.append(y)
            xs, l, u = ys, nl, nu
        else:
            raise ValueError(layer.kind)
    return xs, l, u


def clause_value(net: Net, x: np.ndarray, C: np.ndarray, d: np.ndarray) -> np.ndarray:
    """max_i (C_i y + d_i) at points x (N, n)."""
    y = net.forward(np.atleast_2d(x))
    return (y @ C.T + d).max(axis=1)


def milp_minimum(net: Net, lower: np.ndarray, upper: np.ndarray, C: np.ndarray, d: np.ndarray,
                 time_limit: float = 60.0) -> Optional[Minimum]:
    """The exact minimum of max_i (C_i y + d_i) over the box (None if HiGHS did not finish)."""
    m = _Milp(time_limit)
    xs = [m.var(float(lo), float(hi)) for lo, hi in zip(lower, upper)]
    ys, yl, yu = _encode(m, net.layers, xs, lower.astype(np.float64), upper.astype(np.float64))
    t = m.var(-m.hs.kHighsInf, m.hs.kHighsInf, cost=1.0)
    for c, di in zip(C, d):
        nz = np.nonzero(c)[0]
        m.row(float(di), m.hs.kHighsInf, [t] + [ys[j] for j in nz], [1.0] + [-float(c[j]) for j in nz])
    solved = m.solve()
    if solved is None:
        return None
    value, cols = solved
    x = np.clip(cols[: len(xs)], lower, upper)
    return Minimum(float(value), x, True)


def sampled_minimum(net: Net, lower: np.ndarray, upper: np.ndarray, C: np.ndarray, d: np.ndarray,
                    rng: np.random.Generator, samples: int = 20000, rounds: int = 60) -> Minimum:
    """An upper bound on the minimum: uniform samples and corners, then a shrinking random local search
    from the best few."""
    n = lower.shape[0]
    pts = lower + rng.random((samples, n)) * (upper - lower)
    corners = np.where(rng.random((min(samples, 256), n)) < 0.5, lower, upper)
    pts = np.vstack([pts, corners])
    vals = clause_value(net, pts, C, d)
    best = pts[np.argsort(vals)[:16]]
    step = (upper - lower) / 4
    for _ in range(rounds):
        cand = np.clip(best[:, None, :] + rng.normal(size=(16, 32, n)) * step, lower, upper).reshape(-1, n)
        cand = np.vstack([best, cand])
        v = clause_value(net, cand, C, d)
        best = cand[np.argsort(v)[:16]]
        step = step * 0.9
    v = clause_value(net, best, C, d)
    return Minimum(float(v.min()), best[int(v.argmin())], False)


def minimum(net: Net, lower: np.ndarray, upper: np.ndarray, C: np.ndarray, d: np.ndarray,
            rng: np.random.Generator, time_limit: float = 60.0) -> Minimum:
    """The MILP's exact minimum for piecewise-linear nets (falling back to sampling if it did not finish)."""
    if net.is_piecewise_linear():
        found = milp_minimum(net, lower, upper, C, d, time_limit)
        if found is not None:
            return found
    return sampled_minimum(net, lower, upper, C, d, rng)
