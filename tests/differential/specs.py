"""Random VNN-LIB 1.0 specs of every shape the parser accepts, with the ground truth of each.

A spec here is a disjunction of input boxes (one box, or `(or (and …box…) …)`) and a disjunction of output
clauses, each a conjunction of 1-5 linear rows c·y + d <= 0 (written as plain comparisons `(<= Y_0 Y_1)`,
`(>= Y_0 0.5)` or as sums of products). Boxes may be wide, thin or degenerate (lo = hi in some dims).
Regression-style specs on one output ("y stays in [a, b]", violated by (or (< y a) (> y b)), or the
conjunction "y lies in [a, b]") come out of the same generator. The rows' offsets are shifted together
so that the exact minimum over every (box, clause) of max_i (c_i·y + d_i) sits at a chosen margin: below
zero the spec is violated (`sat`), above it holds (`unsat`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.differential.exact import Minimum, minimum
from tests.differential.networks import Net


@dataclass
class Case:
    """A net, a spec and what the right verdict is."""

    net: Net
    boxes: list[tuple[np.ndarray, np.ndarray]]  # float32-exact bounds
    clauses: list[tuple[np.ndarray, np.ndarray]]  # (C (k, m), d (k,)): violated where C y + d <= 0 row-wise
    truth: str  # "sat" | "unsat" | "sat?" (sampling saw no violation: unsat not excluded) | "unknown"
    minimum: float  # min over boxes and clauses (exact, or an upper bound when not exact)
    witness: np.ndarray | None  # a violating point when truth is "sat"
    exact: bool
    kind: str = ""

    def text(self) -> str:
        return spec_text(self.net.n_inputs, self.net.n_outputs, self.boxes, self.clauses)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _num(v: float) -> str:
    s = repr(float(v))
    return s if "e" not in s else f"{float(v):.17f}".rstrip("0").rstrip(".") or "0"


def random_boxes(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """1-3 boxes; each dim's radius 0.01-0.6, some dims wide (up to 4) or degenerate (lo = hi)."""
    boxes = []
    for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
        centre = rng.uniform(-1, 1, size=n)
        radius = rng.uniform(0.01, 0.6, size=n)
        r = rng.random(n)
        radius = np.where(r < 0.1, 0.0, np.where(r > 0.95, rng.uniform(1, 4, size=n), radius))
        if (radius == 0).all():
            radius[0] = 0.1
        boxes.append((_f32(centre - radius), _f32(centre + radius)))
    return boxes


def random_clauses(rng: np.random.Generator, m: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """1-4 clauses of 1-5 rows: y_i <= y_j comparisons, bounds on one output, or random linear rows."""
    clauses = []
    for _ in range(int(rng.choice([1, 1, 2, 3, 4]))):
        rows = []
        for _ in range(int(rng.integers(1, 6))):
            c = np.zeros(m)
            kind = rng.random()
            if kind < 0.35 and m > 1:
                i, j = rng.choice(m, size=2, replace=False)
                c[i], c[j] = 1.0, -1.0
            elif kind < 0.7:
                c[rng.integers(m)] = rng.choice([-1.0, 1.0])
            else:
                c = np.round(rng.normal(size=m), 3)
            rows.append(c)
        C = np.array(rows)
        clauses.append((C, np.round(rng.normal(size=len(rows)) * 0.2, 3)))
    return clauses


def regression_clauses(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """One output: "y leaves [a, b]" as two one-row clauses, or "y lies in [a, b]" as one two-row clause."""
    a = float(np.round(rng.normal(), 3))
    b = a + float(np.round(rng.uniform(0.1, 1.0), 3))
    if rng.random() < 0.5:
        return [(np.array([[1.0]]), np.array([-a])), (np.array([[-1.0]]), np.array([b]))]
    return [(np.array([[-1.0], [1.0]]), np.array([a, -b]))]


def spec_text(n: int, m: int, boxes: list[tuple[np.ndarray, np.ndarray]],
              clauses: list[tuple[np.ndarray, np.ndarray]]) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(n)] + [f"(declare-const Y_{j} Real)" for j in range(m)]

    def box_atoms(lo: np.ndarray, hi: np.ndarray) -> list[str]:
        return [atom for i in range(n) for atom in (f"(>= X_{i} {_num(lo[i])})", f"(<= X_{i} {_num(hi[i])})")]

    if len(boxes) == 1:
        lines += [f"(assert {atom})" for atom in box_atoms(*boxes[0])]
    else:
        lines.append("(assert (or " + " ".join(f"(and {' '.join(box_atoms(lo, hi))})" for lo, hi in boxes) + "))")

    def row(c: np.ndarray, d: float) -> str:
        nz = np.nonzero(c)[0]
        if len(nz) == 2 and sorted(c[nz]) == [-1.0, 1.0] and d == 0:
            i, j = (nz if c[nz[0]] > 0 else nz[::-1])
            return f"(<= Y_{i} Y_{j})"
        if len(nz) == 1 and abs(c[nz[0]]) == 1.0:
            j = nz[0]
            return f"(<= Y_{j} {_num(-d)})" if c[j] > 0 else f"(>= Y_{j} {_num(d)})"
        terms = " ".join(f"(* {_num(c[j])} Y_{j})" for j in nz) or "0.0"
        return f"(<= (+ {terms}) {_num(-d)})"

    if len(clauses) == 1:
        lines += [f"(assert {row(c, di)})" for c, di in zip(*clauses[0])]
    else:
        lines.append("(assert (or " + " ".join(f"(and {' '.join(row(c, di) for c, di in zip(C, d))})"
                                              for C, d in clauses) + "))")
    return "\n".join(lines) + "\n"


def make_case(rng: np.random.Generator, net: Net, margin: float, time_limit: float = 30.0,
              regression: bool = False) -> Case:
    """Random boxes and clauses for `net` (its float32-rounded parameters), offsets shifted so that the
    minimum is `margin` (exactly, for piecewise-linear nets solved by the MILP)."""
    boxes = random_boxes(rng, net.n_inputs)
    clauses = regression_clauses(rng) if regression and net.n_outputs == 1 else random_clauses(rng, net.n_outputs)
    best: Minimum | None = None
    exact = True
    for lo, hi in boxes:
        for C, d in clauses:
            found = minimum(net, lo, hi, C, d, rng, time_limit)
            exact &= found.exact
            if best is None or found.value < best.value:
                best = found
    assert best is not None
    shift = margin - best.value
    # the text holds offsets as decimals: round the shift so that what is parsed is what was solved
    clauses = [(C, np.array([float(_num(v)) for v in d + shift])) for C, d in clauses]
    value = best.value + shift
    if exact:
        truth = "sat" if value < 0 else "unsat"
    else:
        truth = "sat" if value < 0 else "sat?"
    witness = best.x if value < 0 else None
    return Case(net, boxes, clauses, truth, value, witness, exact)

