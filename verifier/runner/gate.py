"""The CI gate: the exit code of `verifier run`, from the verdict counts.

Rule (consistent with `verifier verify`'s exit codes):
- each verdict named in `--fail-on` (default `sat,error`) that occurs at least once fails the gate with its
  code: sat 1, unknown 2, timeout 2, error 4;
- `--min-verified F`: fewer than F of all instances `unsat` fails the gate with code 2;
- the exit code is the highest of the failing codes (error 4 > unknown/timeout/threshold 2 > sat 1), 0 when
  nothing fails. Usage errors (bad arguments, config, instances.csv, results file) exit 3 before any run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from verifier.result import EXIT_CODES, UNSAT, VERDICTS

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


def evaluate(counts: Mapping[str, int], fail_on: Sequence[str], min_verified: Optional[float]) -> GateOutcome:
    total = sum(counts.get(v, 0) for v in VERDICTS)
    fraction = counts.get(UNSAT, 0) / total if total else 0.0
    failing = {v: counts[v] for v in fail_on if counts.get(v, 0) > 0}
    codes = [EXIT_CODES[v] for v in failing]
    reasons = [f"{n} {v}" for v, n in failing.items()]
    if min_verified is not None and fraction < min_verified:
        codes.append(THRESHOLD_EXIT)
        reasons.append(f"verified {fraction:.3f} < {min_verified:g}")
    code = max(codes, default=0)
    return GateOutcome(code == 0, code, fraction, failing, tuple(reasons))
