"""Verdicts and the result record every front end (CLI panel, JSON, VNN-COMP file) renders."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Verdict names follow VNN-COMP: the spec states a violation, so `unsat` means the property holds.
UNSAT, SAT, UNKNOWN, TIMEOUT, ERROR = "unsat", "sat", "unknown", "timeout", "error"
VERDICTS = (UNSAT, SAT, UNKNOWN, TIMEOUT, ERROR)

# Exit codes a CI job can gate on (documented in the README).
EXIT_CODES = {UNSAT: 0, SAT: 1, UNKNOWN: 2, TIMEOUT: 2, ERROR: 4}
EXIT_BAD_INPUT = 3
EXIT_INTERNAL = 4

JSON_SCHEMA = "verifier.result/1"
# What a proof is for by default: the real-valued network (float32/64 declarations are read as real);
# `semantics="float32"` proves the network evaluated in float32 too (Result.semantics).
SEMANTICS = "real"


@dataclass(frozen=True)
class Counterexample:
    """An input (flattened, as float32 values) and the onnxruntime output that replays the violation."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    property_index: int = 0
    clause_index: int = 0


@dataclass(frozen=True)
class PropertyOutcome:
    """What was established for one (input box, output disjunction) pair of the spec."""

    index: int
    verdict: str
    method: str | None  # ibp / crown / pgd / ... : the stage that decided it
    margin: float | None  # lower bound of min over clauses of max over rows of C·y + d; > 0 proves it


@dataclass(frozen=True)
class Result:
    verdict: str
    method: str | None = None
    margin: float | None = None
    counterexample: Counterexample | None = None
    times: dict[str, float] = field(default_factory=dict)
    message: str = ""
    model: str = ""
    spec: str = ""
    properties: tuple[PropertyOutcome, ...] = ()
    exit_code_override: int | None = None  # bad input (3) vs internal error (4) for `error`
    bab: dict[str, int] | None = None  # when branch and bound ran: domains bounded (and open ones left)
    certificate: dict[str, Any] | None = None  # {"path", "leaves", "checked", ...} when one was asked for
    semantics: str = SEMANTICS  # real | float32: what an unsat holds for

    @property
    def exit_code(self) -> int:
        if self.exit_code_override is not None:
            return self.exit_code_override
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (schema `verifier.result/1`, documented in the README)."""
        from verifier import __version__

        return {
            "schema": JSON_SCHEMA,
            "version": __version__,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "model": self.model,
            "spec": self.spec,
            "method": self.method,
            "margin": self.margin,
            "counterexample": None if self.counterexample is None else {
                "x": list(self.counterexample.x),
                "y": list(self.counterexample.y),
                "property": self.counterexample.property_index,
                "clause": self.counterexample.clause_index,
            },
            "times": dict(self.times),
            "properties": [asdict(p) for p in self.properties],
            "bab": None if self.bab is None else dict(self.bab),
            "message": self.message,
            "semantics": self.semantics,
            **({"certificate": self.certificate} if self.certificate is not None else {}),
        }
