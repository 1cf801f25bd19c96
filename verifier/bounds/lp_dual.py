"""A linear program in bounded form and the valid lower bound any dual vector gives it (weak duality).

Why: an LP solver's optimum is only accurate to its tolerances (1e-7 and worse), which is not a proof.
For min c·v subject to rl <= A v <= ru and cl <= v <= cu, *every* row multiplier y gives
    c·v = (c - Aᵀy)·v + y·(A v) >= sum_j min(r_j cl_j, r_j cu_j) + sum_i min(y_i rl_i, y_i ru_i),  r = c - Aᵀy,
so the solver's dual is used only as a guess, and the bound is re-derived here in float64 from the problem
data, less a margin far above float64's rounding of these sums. A poor dual gives a loose bound, never a
wrong one. Pure numpy: no solver needed to check a certificate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Relative margin on the certified bound: float64 rounding of a sum of N products is below N * 1.2e-16
# of the sum of their magnitudes; 1e-9 covers sums of up to ~8 million terms.
ROUNDING_MARGIN = 1e-9


@dataclass(frozen=True)
class BoundedLp:
    """min cost·v subject to row_lower <= A v <= row_upper, col_lower <= v <= col_upper (columns bounded).

    A is dense (rows, cols) float64; row bounds may be ±inf, column bounds must be finite."""

    A: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    abs_A: np.ndarray = field(init=False, repr=False, compare=False)  # |A|, for the rounding margin

    def __post_init__(self) -> None:
        if not (np.all(np.isfinite(self.col_lower)) and np.all(np.isfinite(self.col_upper))):
            raise ValueError("every column needs finite bounds for a dual certificate")
        object.__setattr__(self, "abs_A", np.abs(self.A))


def dual_bound(lp: BoundedLp, cost: np.ndarray, y: np.ndarray) -> float:
    """A lower bound of min cost·v over the LP's feasible set, valid for any multipliers y (rows).

    Multipliers that would meet an infinite row bound are set to 0 first (still any y: the bound stays
    valid). Returns -inf when y is unusable (non-finite)."""
    y = np.where(np.isfinite(y), y, 0.0).astype(np.float64)
    y = np.where((y > 0) & ~np.isfinite(lp.row_lower), 0.0, y)
    y = np.where((y < 0) & ~np.isfinite(lp.row_upper), 0.0, y)
    r = cost - lp.A.T @ y
    row_side = np.where(y > 0, lp.row_lower, lp.row_upper)
    row_terms = np.where(y != 0, y * np.where(np.isfinite(row_side), row_side, 0.0), 0.0)
    col_terms = np.where(r > 0, r * lp.col_lower, r * lp.col_upper)
    bound = float(row_terms.sum() + col_terms.sum())
    col_scale = np.maximum(np.abs(lp.col_lower), np.abs(lp.col_upper))
    magnitude = float(np.abs(row_terms).sum() + ((np.abs(cost) + lp.abs_A.T @ np.abs(y)) * col_scale).sum())
    if not np.isfinite(bound) or not np.isfinite(magnitude):
        return -np.inf
    return bound - ROUNDING_MARGIN * magnitude - np.finfo(np.float64).tiny
