"""The in-memory form of a VNN-LIB property.

A spec states a *violation*: `sat` means some input x in one of the boxes makes one of that box's
clauses hold (all rows of C·y + d <= 0 at y = f(x)); `unsat` means no input does, i.e. the property holds.
Inputs and outputs are indexed in row-major (C) order of the flattened ONNX input / output, as X_i / Y_j.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clause:
    """A conjunction of linear output constraints C·y + d <= 0 (every row must hold)."""

    C: np.ndarray  # (k, n_outputs) float64; k == 0 means "always true"
    d: np.ndarray  # (k,) float64
    # (k,) bool or None: rows written with < or >, which a counterexample must meet strictly (C·y + d < 0).
    # Bounds treat them as <= (a superset of the violation, so proofs stay sound).
    strict: np.ndarray | None = None

    def holds(self, y: np.ndarray, tol: float = 0.0) -> bool:
        """True if every row holds at output vector y (flattened); tol loosens the test."""
        values = self.C @ np.asarray(y, dtype=np.float64).reshape(-1) + self.d
        if self.strict is not None and np.any(values[self.strict] >= tol):
            return False
        return bool(np.all(values <= tol))


@dataclass(frozen=True)
class Property:
    """One input box and the disjunction of output clauses that make a violation inside it."""

    lower: np.ndarray  # (n_inputs,) float64
    upper: np.ndarray  # (n_inputs,) float64
    clauses: tuple[Clause, ...]
    # (n_inputs,) bool or None: ends written with < or >. Bounds use the closed box (a superset, so proofs stay
    # sound); a counterexample must lie strictly inside these ends (`contains`).
    open_lower: np.ndarray | None = None
    open_upper: np.ndarray | None = None

    def contains(self, x: np.ndarray) -> bool:
        """x (flattened) in the box, strict ends excluded."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if np.any(x < self.lower) or np.any(x > self.upper):
            return False
        if self.open_lower is not None and np.any(x[self.open_lower] <= self.lower[self.open_lower]):
            return False
        return not (self.open_upper is not None and np.any(x[self.open_upper] >= self.upper[self.open_upper]))

    def violated_by(self, y: np.ndarray, tol: float = 0.0) -> bool:
        return any(c.holds(y, tol) for c in self.clauses)


@dataclass(frozen=True)
class Spec:
    n_inputs: int
    n_outputs: int
    properties: tuple[Property, ...]  # a violation of any one is a counterexample
    source: str = ""  # file path, for messages
