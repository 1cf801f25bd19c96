"""Outward-rounded interval and linear-bound arithmetic in float64 (numpy only).

Every computed quantity carries an explicit error term, from the standard bound for a float64 sum
of n products, |fl(sum) - sum| <= gamma_n * sum |terms| with gamma_n = n u / (1 - n u), u = 2^-53,
valid for any summation order (and with fused multiply-adds). Error terms are themselves computed in
floating point, so each is inflated by 1% (their own rounding is a relative O(n u), far below 1%)
plus an absolute TINY per term against underflow; final results step one ulp outward (nextafter).

The bound computations follow CROWN (back-substitution through relu relaxations), but soundness does
not depend on how the coefficients were chosen: for any slope mu of a relu's input z on [l, u], the
offset kappa = min over z in {l, 0, u} of (lambda relu(z) - mu z) is computed rigorously, so
lambda relu(z) >= mu z + kappa holds on the whole interval (the difference is piecewise linear in z
with its only kink at 0).
"""
from __future__ import annotations

import numpy as np

U = 2.0 ** -53
TINY = 1e-300  # per term: far above any underflow error (2^-1075)
INFLATE = 1.01


def gamma(n: int) -> float:
    return n * U / (1 - n * U)


def down(x: np.ndarray, err: np.ndarray | float = 0.0) -> np.ndarray:
    """A float <= every real within err of x."""
    return np.nextafter(x - err, -np.inf)


def up(x: np.ndarray, err: np.ndarray | float = 0.0) -> np.ndarray:
    return np.nextafter(x + err, np.inf)


def affine_interval(W: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous bounds of W x + b over the boxes [lo, hi] (B, n_in): (B, n_out) each."""
    n = W.shape[1]
    mid = (lo + hi) / 2
    rad = up(np.maximum(hi - mid, mid - lo))  # [mid - rad, mid + rad] contains [lo, hi]
    absW = np.abs(W)
    centre = mid @ W.T + b
    spread = rad @ absW.T
    err = INFLATE * (gamma(n + 1) * (np.abs(mid) @ absW.T + np.abs(b)) + gamma(n + 1) * spread) + TINY * (n + 1)
    return down(centre - spread, err), up(centre + spread, err)


def divide_interval(c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous bounds of x / c (c nonzero) over [lo, hi]: one rounding per quotient, stepped outward."""
    a, b = lo / c, hi / c
    return np.nextafter(np.minimum(a, b), -np.inf), np.nextafter(np.maximum(a, b), np.inf)


def relu_interval(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(lo, 0.0), np.maximum(hi, 0.0)


class LinearBound:
    """For every box b and row r: obj_r(x) >= coef[b, r] . v(x) + const[b, r] - slack[b, r] on box b,
    where v is the value of the layer reached so far (exact, real-valued network)."""

    def __init__(self, coef: np.ndarray, const: np.ndarray, slack: np.ndarray) -> None:
        self.coef, self.const, self.slack = coef, const, slack

    @classmethod
    def rows(cls, batch: int, eye: np.ndarray) -> "LinearBound":
        """Start: obj_r = eye[r] . v, exactly."""
        coef = np.broadcast_to(eye, (batch,) + eye.shape).copy()
        zero = np.zeros((batch, eye.shape[0]))
        return cls(coef, zero, zero.copy())

    def through_affine(self, W: np.ndarray, b: np.ndarray, magnitude_in: np.ndarray) -> "LinearBound":
        """Back through v_out = W v_in + b; magnitude_in (B, n_in) >= |v_in| on the box."""
        lam = self.coef
        n = W.shape[0]
        absL = np.abs(lam)
        coef = lam @ W
        cb = np.einsum("brn,n->br", lam, b)
        const = self.const + cb
        scale = np.abs(W) @ magnitude_in[..., None]  # (B, n_out, 1)
        err = gamma(n + 1) * (np.einsum("brn,bn->br", absL, scale[..., 0] + np.abs(b)) + np.abs(self.const)) \
            + U * np.abs(const)
        return LinearBound(coef, const, self.slack + INFLATE * err + TINY * (n + 2))

    def through_divide(self, c: np.ndarray, magnitude_in: np.ndarray) -> "LinearBound":
        """Back through v_out = v_in / c: coefficient lam / c, whose rounding (u |lam / c| per entry)
        times |v_in| goes into the slack."""
        coef = self.coef / c
        n = c.shape[0]
        err = 2 * U * np.einsum("brn,bn->br", np.abs(coef), magnitude_in)
        return LinearBound(coef, self.const, self.slack + INFLATE * err + TINY * (n + 2))

    def through_relu(self, lo: np.ndarray, hi: np.ndarray, alpha: np.ndarray | None = None) -> "LinearBound":
        """Back through v = relu(z), z in [lo, hi] (B, n) rigorous. Slopes: CROWN's (the upper line
        where the coefficient is negative, the lower line of slope alpha where positive; alpha
        defaults to CROWN's adaptive 1 if hi >= -lo else 0, and may be given per row (B, R, n))."""
        lam = self.coef
        l, h = lo[:, None, :], hi[:, None, :]
        if alpha is None:
            alpha = (h >= -l).astype(np.float64)
        unstable = (l < 0) & (h > 0)
        width = np.where(unstable, h - l, 1.0)
        upper_slope = np.where(unstable, h / width, 0.0)
        mu = np.where(l >= 0, lam, np.where(h <= 0, 0.0, np.where(lam >= 0, lam * alpha, lam * upper_slope)))
        kappa = None
        for p in (l, np.clip(0.0, l, h), h):
            a = lam * np.maximum(p, 0.0)
            m = mu * p
            g = a - m
            g_lo = g - 2 * U * (np.abs(a) + np.abs(m) + np.abs(g)) - TINY
            kappa = g_lo if kappa is None else np.minimum(kappa, g_lo)
        n = lam.shape[-1]
        total = kappa.sum(-1)
        const = self.const + total
        err = gamma(n + 2) * (np.abs(kappa).sum(-1) + np.abs(self.const)) + U * np.abs(const)
        return LinearBound(mu, const, self.slack + INFLATE * err + TINY * (n + 2))

    def box_minimum(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Rigorous lower bound (B, R) of obj over the input boxes [lo, hi] (B, n)."""
        lam = self.coef
        p, q = lam * lo[:, None, :], lam * hi[:, None, :]
        m = np.minimum(p, q)  # each within u|m| of the exact product's minimum
        n = lam.shape[-1]
        total = m.sum(-1) + self.const
        err = gamma(n + 2) * (np.abs(m).sum(-1) + np.abs(self.const) + self.slack)
        return down(total - self.slack, INFLATE * err + TINY * (n + 2))

    def combined(self, weights: np.ndarray, magnitude: np.ndarray) -> "LinearBound":
        """The single row sum_r weights[b, r] * obj_r (weights >= 0, clamped), rigorous;
        magnitude (B, n) >= |v| on the box."""
        w = np.maximum(weights, 0.0)
        k = w.shape[1]
        coef = np.einsum("br,brn->bn", w, self.coef)[:, None, :]
        const = np.einsum("br,br->b", w, self.const)
        slack = np.einsum("br,br->b", w, self.slack)
        absterm = np.einsum("br,brn,bn->b", w, np.abs(self.coef), magnitude) + np.einsum("br,br->b", w, np.abs(self.const))
        err = gamma(k + 2) * (absterm + slack) + U * np.abs(const)
        return LinearBound(coef, const[:, None], (slack * (1 + gamma(k + 2)) + INFLATE * err + TINY * (k + 2))[:, None])
