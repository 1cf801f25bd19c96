"""The CI gate: the exit code of `verifier run`, from the verdict counts.

Rule (consistent with `verifier verify`'s exit codes):
- each verdict named in `--fail-on` (default `sat,error`) that occurs at least once fails the gate with its
  code: sat 1, unknown 2, timeout 2, error 3 when every error record is bad input (its own exit_code 3: an
  unreadable spec, an unsupported model) and 4 when any is an internal error;
- `--min-verified F`: fewer than F of all instances `unsat` fails the gate with code 2;
- the exit code is the highest of the failing codes (internal error 4 > bad input 3 > unknown/timeout/threshold
  2 > sat 1), 0 when nothing fails. Usage errors (bad arguments, config, instances.csv, results file) exit 3
  before any run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from verifier.result import ERROR, EXIT_CODES, UNSAT, VERDICTS

THRESHOLD_EXIT = 2


@dataclass(frozen=True)
class GateOutcome:
    passed: bool
    exit_code: int
    verified_fraction: float
    failing: dict[str, int] = field(default_factory=dict)  # failing verdict -> count
    reasons: tuple[str, ...] = ()  # one short phrase per failure, for the summary

    def to_json(self, fail_on: Sequence[str], min_verified: Optional[float]) -> dict[str, object]:
        return {"passed": self.passed, "exit_code": self.exit_code, "fail_on": list(fail_on),
                "min_verified": min_verified, "verified_fraction": self.verified_fraction,
                "failing": dict(self.failing), "reasons": list(self.reasons)}


def error_exit(records: Sequence[Mapping[str, object]]) -> int:
    """The code an `error` verdict fails the gate with: the highest exit_code of the error records (3 when all
    are bad input: never 4 for bad input), 4 when there are none to tell."""
    codes = [int(r.get("exit_code") or EXIT_CODES[ERROR]) for r in records  # type: ignore[call-overload]
             if r.get("verdict") == ERROR]
    return max(codes, default=EXIT_CODES[ERROR])


def evaluate(counts: Mapping[str, int], fail_on: Sequence[str], min_verified: Optional[float],
             error_code: int = EXIT_CODES[ERROR]) -> GateOutcome:
    total = sum(counts.get(v, 0) for v in VERDICTS)
    fraction = counts.get(UNSAT, 0) / total if total else 0.0
    failing = {v: counts[v] for v in fail_on if counts.get(v, 0) > 0}
    codes = [error_code if v == ERROR else EXIT_CODES[v] for v in failing]
    reasons = [f"{n} {v}" for v, n in failing.items()]
    if min_verified is not None and fraction < min_verified:
        codes.append(THRESHOLD_EXIT)
        reasons.append(f"verified {fraction:.3f} < {min_verified:g}")
    code = max(codes, default=0)
    return GateOutcome(code == 0, code, fraction, failing, tuple(reasons))
