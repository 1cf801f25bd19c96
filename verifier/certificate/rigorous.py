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
        active = (l >= 0).astype(np.float64)
        # the factor on lam: 1 (active), 0 (inactive), alpha or the upper line's slope (unstable)
        f_pos = np.where(unstable, alpha, active)
        f_neg = np.where(unstable, upper_slope, active)
        mu = lam * np.where(lam >= 0, f_pos, f_neg)
        # kappa is exactly 0 where the neuron is stable (mu = lam or 0) and where lam >= 0 with alpha in
        # [0, 1] (then 0 <= fl(lam alpha) <= lam, so lam relu(z) - mu z >= 0 at l, 0 and h, signs exact);
        # elsewhere it is computed at the three points.
        in_unit = (alpha >= 0) & (alpha <= 1)
        need = unstable & ((lam < 0) | ~in_unit)
        kappa = np.zeros(lam.shape)
        if need.any():
            lam_n, mu_n = lam[need], mu[need]
            l_n, h_n = np.broadcast_to(l, lam.shape)[need], np.broadcast_to(h, lam.shape)[need]
            k_n = None
            for p in (l_n, np.clip(0.0, l_n, h_n), h_n):
                a = lam_n * np.maximum(p, 0.0)
                m = mu_n * p
                g = a - m
                g_lo = g - 2 * U * (np.abs(a) + np.abs(m) + np.abs(g)) - TINY
                k_n = g_lo if k_n is None else np.minimum(k_n, g_lo)
            kappa[need] = k_n
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


def scale_rows(lin: LinearBound, w: np.ndarray, bias: np.ndarray, magnitude: np.ndarray) -> LinearBound:
    """For w (B, R) >= 0: obj'_r = w_r obj_r + bias_r >= (w_r coef_r) . v + (w_r const_r + bias_r) - slack'."""
    coef = lin.coef * w[..., None]
    const = lin.const * w + bias
    n = lin.coef.shape[-1]
    err = 2 * U * (np.einsum("brn,bn->br", np.abs(coef), magnitude) + np.abs(lin.const * w) + np.abs(bias)
                   + np.abs(const)) + gamma(n) * 0
    return LinearBound(coef, const, lin.slack * w * (1 + 4 * U) + INFLATE * err + TINY * (n + 3))


def mix_bounds(A: np.ndarray, P: LinearBound, Bm: np.ndarray, Q: LinearBound, bias: np.ndarray,
               magnitude: np.ndarray) -> LinearBound:
    """For A, Bm (R', R) >= 0: obj' = A obj_P + Bm obj_Q + bias, a lower bound on it from P's and Q's."""
    coef = np.einsum("kr,brn->bkn", A, P.coef) + np.einsum("kr,brn->bkn", Bm, Q.coef)
    const = P.const @ A.T + Q.const @ Bm.T + bias
    slack = P.slack @ A.T + Q.slack @ Bm.T
    R = A.shape[1]
    size = np.einsum("brn,bn->br", np.abs(P.coef), magnitude) @ A.T + np.einsum("brn,bn->br", np.abs(Q.coef), magnitude) @ Bm.T \
        + np.abs(P.const) @ A.T + np.abs(Q.const) @ Bm.T + np.abs(bias)
    err = gamma(2 * R + 2) * (size + slack) + U * np.abs(const)
    return LinearBound(coef, const, slack + INFLATE * err + TINY * (2 * R + 3))


def relu_lines(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rigorous lines around relu on [lo, hi] (B, n): relu(z) >= a z + k_lo and relu(z) <= s z + k_hi,
    with a in {0, 1} (CROWN's adaptive choice), s >= 0; the offsets are checked at z in {lo, 0, hi}."""
    unstable = (lo < 0) & (hi > 0)
    a = np.where(hi <= 0, 0.0, np.where(lo >= 0, 1.0, (hi >= -lo).astype(np.float64)))
    s = np.where(hi <= 0, 0.0, np.where(lo >= 0, 1.0, hi / np.where(unstable, hi - lo, 1.0)))
    k_lo, k_hi = None, None
    for p in (lo, np.clip(0.0, lo, hi), hi):
        r = np.maximum(p, 0.0)
        g_lo, g_hi = r - a * p, r - s * p
        e_lo = 2 * U * (np.abs(r) + np.abs(a * p) + np.abs(g_lo)) + TINY
        e_hi = 2 * U * (np.abs(r) + np.abs(s * p) + np.abs(g_hi)) + TINY
        k_lo = g_lo - e_lo if k_lo is None else np.minimum(k_lo, g_lo - e_lo)
        k_hi = g_hi + e_hi if k_hi is None else np.maximum(k_hi, g_hi + e_hi)
    return a, k_lo, s, k_hi


class ForwardBounds:
    """Forward linear bounds of one value v in terms of the input x: `low` bounds v from below and
    `neg` bounds -v from below (both LinearBounds with one row per element of v)."""

    def __init__(self, low: LinearBound, neg: LinearBound) -> None:
        self.low, self.neg = low, neg

    @classmethod
    def identity(cls, batch: int, n: int) -> "ForwardBounds":
        return cls(LinearBound.rows(batch, np.eye(n)), LinearBound.rows(batch, -np.eye(n)))

    def affine(self, W: np.ndarray, b: np.ndarray, magnitude: np.ndarray) -> "ForwardBounds":
        Wp, Wn = np.maximum(W, 0.0), np.maximum(-W, 0.0)
        return ForwardBounds(mix_bounds(Wp, self.low, Wn, self.neg, b, magnitude),
                             mix_bounds(Wn, self.low, Wp, self.neg, -b, magnitude))

    def divide(self, c: np.ndarray, magnitude: np.ndarray, value_magnitude: np.ndarray) -> "ForwardBounds":
        """v / c, as w v with w = fl(1 / c) plus |v| |1/c - w| <= 2u |w| |v| in the slack."""
        w = 1.0 / c
        pos, neg = (self.low, self.neg), (self.neg, self.low)
        out = []
        for first, second in (pos, neg):
            src_pos, src_neg = first, second
            low = scale_rows(src_pos, np.broadcast_to(np.maximum(w, 0.0), src_pos.const.shape), np.zeros_like(src_pos.const), magnitude)
            low2 = scale_rows(src_neg, np.broadcast_to(np.maximum(-w, 0.0), src_neg.const.shape), np.zeros_like(src_neg.const), magnitude)
            merged = LinearBound(low.coef + low2.coef, low.const + low2.const,
                                 (low.slack + low2.slack) * (1 + 4 * U) + 2 * U * (np.abs(low.const) + np.abs(low2.const))
                                 + INFLATE * 2 * U * np.abs(w) * value_magnitude + TINY)
            out.append(merged)
        return ForwardBounds(out[0], out[1])

    def relu(self, lo: np.ndarray, hi: np.ndarray, magnitude: np.ndarray) -> "ForwardBounds":
        a, k_lo, s, k_hi = relu_lines(lo, hi)
        return ForwardBounds(scale_rows(self.low, a, k_lo, magnitude), scale_rows(self.neg, s, -k_hi, magnitude))

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.low.box_minimum(lo, hi), -self.neg.box_minimum(lo, hi)
