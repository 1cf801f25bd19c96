"""Run one differential case through `verifier.verify` and judge the answer against the ground truth.

Failures: an exception or an `error` verdict on valid input (what the CLI would turn into exit 4 or 3); a
decided verdict contradicting an exact ground truth; `unsat` where a violating point is known; a `sat`
whose counterexample does not violate the spec when replayed through the float64 reference forward pass.
"""
from __future__ import annotations

import itertools
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from tests.differential.exact import clause_value
from tests.differential.networks import to_onnx
from tests.differential.specs import Case

# every (method, bab) pair the CLI accepts
MODES = list(itertools.product(("auto", "ibp", "crown", "alpha"), ("auto", "input", "relu", "none")))


@dataclass(frozen=True)
class Verdict:
    verdict: str
    failure: str  # "" when the answer is acceptable
    seconds: float


def replays(case: Case, x: np.ndarray) -> bool:
    """x lies in one of the case's boxes and meets every row of one of its clauses (float64 forward)."""
    tol_x = 1e-6 * (1 + np.abs(x))
    inside = any(bool(((x >= lo - tol_x) & (x <= hi + tol_x)).all()) for lo, hi in case.boxes)
    scale = 1.0 + float(np.abs(case.net.forward(x[None, :])).max())
    hit = any(float(clause_value(case.net, x, C, d)[0]) <= 1e-5 * scale for C, d in case.clauses)
    return inside and hit


def judge(case: Case, method: str, bab: str, timeout: float, workdir: Path | None = None) -> Verdict:
    from verifier.api import verify

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        net_path, spec_path = Path(tmp) / "net.onnx", Path(tmp) / "spec.vnnlib"
        onnx.save(to_onnx(case.net), str(net_path))
        spec_path.write_text(case.text())
        try:
            res = verify(str(net_path), str(spec_path), timeout=timeout, method=method, bab=bab, cache=False,
                         device="cpu")
        except Exception:  # noqa: BLE001 - the whole point: any exception is a finding
            return Verdict("exception", traceback.format_exc(limit=-3), 0.0)
    seconds = res.times.get("total", 0.0)
    if res.verdict == "error":
        return Verdict("error", f"error on valid input: {res.message}", seconds)
    if res.verdict == "unsat" and case.truth == "sat":
        return Verdict("unsat", f"WRONG: unsat but the minimum is {case.minimum:.6g} (exact={case.exact})", seconds)
    if res.verdict == "sat":
        x = np.asarray(res.counterexample.x, dtype=np.float64) if res.counterexample else None
        if x is None or not replays(case, x):
            return Verdict("sat", f"WRONG: sat with a counterexample that does not replay (truth {case.truth})",
                           seconds)
    return Verdict(res.verdict, "", seconds)
