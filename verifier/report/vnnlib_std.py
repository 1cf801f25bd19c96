"""The VNN-LIB 2.0 standard's `verify` output: one verdict line, then after `sat` the assignment.

From the standard's solver command-line chapter: the first stdout line is `sat`, `unsat`, `unknown` or
`timed-out`; after `sat` every declared variable follows in declaration order as a header line
`NAME TYPE [d1,d2]` and then its elements, one per line, in row-major order. Errors are not a verdict:
they go to stderr (the caller's job), with nothing on stdout.
"""
from __future__ import annotations

import math
from typing import Iterable, Protocol, Sequence

from verifier.result import SAT, TIMEOUT, UNKNOWN, UNSAT, Result

VERDICT_LINES = {UNSAT: "unsat", SAT: "sat", UNKNOWN: "unknown", TIMEOUT: "timed-out"}


class Declared(Protocol):
    """A declared tensor: what the assignment header needs (vnnlib2.TensorDecl is one)."""

    name: str
    element_type: str
    shape: tuple[int, ...]


def format_assignment(variables: Iterable[tuple[Declared, Sequence[float]]]) -> str:
    """`NAME TYPE [dims]` and one value a line per variable; values exactly (repr of the float)."""
    lines: list[str] = []
    for decl, values in variables:
        lines.append(f"{decl.name} {decl.element_type} [{','.join(map(str, decl.shape))}]")
        lines.extend(repr(float(v)) for v in values)
    return "\n".join(lines)


def format_answer(result: Result, inputs: Sequence[Declared], outputs: Sequence[Declared]) -> str:
    """The whole stdout of a standard `verify`, for a result that is a verdict (not `error`).

    `inputs` / `outputs` split the flat counterexample x / y in order (one tensor each for a 2.0
    query, one scalar per X_i / Y_j for a 1.0 query).
    """
    if result.verdict not in VERDICT_LINES:
        raise ValueError(f"{result.verdict!r} is not a verdict of the standard")
    first = VERDICT_LINES[result.verdict]
    cex = result.counterexample
    if result.verdict != SAT or cex is None:
        return first + "\n"
    pairs = list(_split(inputs, cex.x)) + list(_split(outputs, cex.y))
    return f"{first}\n{format_assignment(pairs)}\n"


def _split(decls: Sequence[Declared], flat: Sequence[float]) -> Iterable[tuple[Declared, Sequence[float]]]:
    sizes = [math.prod(d.shape) for d in decls]
    if sum(sizes) != len(flat):
        raise ValueError(f"{len(flat)} values for declarations of {sum(sizes)} elements")
    start = 0
    for decl, size in zip(decls, sizes):
        yield decl, flat[start:start + size]
        start += size

