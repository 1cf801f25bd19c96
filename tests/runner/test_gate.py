"""The CI gate: every exit code, from the rule and through real runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runner.helpers import FALSIFIABLE, ROBUST, TOY, invoke
from verifier.runner.gate import error_exit, evaluate


def _counts(**n: int) -> dict[str, int]:
    return {v: n.get(v, 0) for v in ("unsat", "sat", "unknown", "timeout", "error")}


@pytest.mark.parametrize("counts,fail_on,min_verified,code", [
    (_counts(unsat=5), ("sat", "error"), None, 0),
    (_counts(unsat=4, unknown=1), ("sat", "error"), None, 0),  # unknown is not in the default fail-on
    (_counts(unsat=4, sat=1), ("sat", "error"), None, 1),
    (_counts(unsat=4, unknown=1), ("unknown",), None, 2),
    (_counts(unsat=4, timeout=1), ("timeout",), None, 2),
    (_counts(unsat=4, error=1), ("sat", "error"), None, 4),
    (_counts(unsat=3, sat=1, error=1), ("sat", "error"), None, 4),  # the highest failing code wins
    (_counts(unsat=3, sat=1, unknown=1), ("sat", "unknown"), None, 2),
    (_counts(unsat=9, unknown=1), (), 0.95, 2),  # threshold miss
    (_counts(unsat=19, unknown=1), (), 0.95, 0),  # 0.95 exactly passes
    (_counts(unsat=3, sat=1), ("sat",), 0.9, 2),  # threshold miss (2) is worse than sat (1)
    (_counts(unsat=3, error=1), ("error",), 0.9, 4),  # but not worse than error
    (_counts(sat=2), (), None, 0),  # nothing to fail on
])
def test_gate_rule(counts, fail_on, min_verified, code) -> None:
    outcome = evaluate(counts, fail_on, min_verified)
    assert outcome.exit_code == code and outcome.passed == (code == 0)
    assert bool(outcome.reasons) == (code != 0)


def _exit(*args) -> tuple[int, dict]:
    res = invoke("run", "--model", TOY, *args, "--json", "--timeout", "20")
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else {})


def test_exit_codes_of_real_runs(tmp_path: Path) -> None:
    code, doc = _exit(ROBUST, ROBUST)
    assert code == 0 and doc["gate"]["passed"] and doc["counts"]["unsat"] == 2
    code, doc = _exit(ROBUST, FALSIFIABLE)
    assert code == 1 and doc["gate"]["failing"] == {"sat": 1} and doc["gate"]["exit_code"] == 1
    assert _exit(ROBUST, FALSIFIABLE, "--fail-on", "error")[0] == 0
    # IBP alone with no branch and bound leaves the toy spec unknown
    assert _exit(ROBUST, "--method", "ibp", "--bab", "none")[0] == 0
    assert _exit(ROBUST, "--method", "ibp", "--bab", "none", "--fail-on", "unknown")[0] == 2
    code, doc = _exit(ROBUST, "--method", "ibp", "--bab", "none", "--fail-on", "none", "--min-verified", "0.5")
    assert code == 2 and doc["gate"]["reasons"] == ["verified 0.000 < 0.5"]
    code, doc = _exit(ROBUST, tmp_path / "missing.vnnlib")  # bad input: 3, never 4
    assert code == 3 and doc["counts"]["error"] == 1 and doc["counts"]["unsat"] == 1
    res = invoke("run", "--model", TOY, ROBUST, "--timeout", "1e-9", "--fail-on", "timeout", "--quiet")
    assert res.exit_code == 2 and "timeout=1" in res.stdout
    assert invoke("run").exit_code == 3  # usage error: nothing to run
    assert invoke("run", "--model", TOY).exit_code == 3
    assert invoke("run", "--model", TOY, ROBUST, "--min-verified", "2").exit_code == 3


@pytest.mark.parametrize("codes,sat,code", [
    ([3], 0, 3),  # an error record from bad input fails the gate with 3, not 4 (4 is for our bugs)
    ([3, 3], 1, 3),  # and wins over sat
    ([3, 4], 0, 4),  # one internal error among them: 4
    ([4], 1, 4),
])
def test_error_records_fail_with_their_own_code(codes: list, sat: int, code: int) -> None:
    records = [{"verdict": "error", "exit_code": c} for c in codes] + [{"verdict": "sat", "exit_code": 1}] * sat
    outcome = evaluate(_counts(error=len(codes), sat=sat), ("sat", "error"), None, error_exit(records))
    assert outcome.exit_code == code and not outcome.passed
    assert error_exit([{"verdict": "unsat", "exit_code": 0}]) == 4  # nothing to tell by: the verdict's code
