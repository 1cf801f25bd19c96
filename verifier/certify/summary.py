"""From per-sample records to the summary of one radius, and the `--json` document (schema
`verifier.certify/1`, documented in the README; fields are only ever added within the version)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from verifier.certify.records import FALSIFIED, MISCLASSIFIED, TIMEOUT, UNKNOWN, VERDICTS, VERIFIED

SCHEMA = "verifier.certify/1"
EXIT_MET, EXIT_NOT_MET = 0, 2


def summarise(records: Sequence[dict[str, Any]], eps: float, stages: Sequence[str]) -> dict[str, Any]:
    """Accuracies (fractions of all selected samples), counts and seconds per stage at one radius."""
    n = len(records)
    counts = {v: sum(r["verdict"] == v for r in records) for v in VERDICTS}
    decided_by: dict[str, int] = {}
    for r in records:
        if r["stage"] is not None:
            decided_by[r["stage"]] = decided_by.get(r["stage"], 0) + 1

    def frac(k: int) -> Optional[float]:
        return k / n if n else None

    verified_after, so_far = {}, 0
    for stage in stages:
        if stage == "pgd":
            continue
        so_far += sum(r["verdict"] == VERIFIED and r["stage"] == stage for r in records)
        verified_after[stage] = frac(so_far)
    pgd_hits = sum(r["verdict"] == FALSIFIED and r["stage"] == "pgd" for r in records)
    times: dict[str, float] = {}
    for r in records:
        for k, v in r["times"].items():
            times[k] = times.get(k, 0.0) + v
    times = {k: round(v, 4) for k, v in times.items()}
    times["total"] = round(sum(times.values()), 4)
    return {
        "eps": eps,
        "n": n,
        "clean_accuracy": frac(n - counts[MISCLASSIFIED]),
        "attack_accuracy": frac(n - counts[MISCLASSIFIED] - pgd_hits) if "pgd" in stages else None,
        "verified_accuracy": frac(counts[VERIFIED]),
        "verified_after": verified_after,
        "robust_upper_bound": frac(n - counts[MISCLASSIFIED] - counts[FALSIFIED]),
        "counts": counts,
        "decided_by": decided_by,
        "unknown": frac(counts[UNKNOWN]),
        "timeout": frac(counts[TIMEOUT]),
        "times": times,
    }


def document(*, model: str, model_sha256: str, data: str, selection: dict[str, Any], norm: str,
             normalisation: Optional[dict[str, Any]], clip: Optional[Sequence[float]], stages: Sequence[str],
             timeout: float, runs: list[dict[str, Any]], min_verified_acc: Optional[float],
             wall: float) -> dict[str, Any]:
    """The --json document; `passed` / `exit_code` apply the threshold to every radius."""
    from verifier import __version__

    passed = None if min_verified_acc is None else all(
        (r["verified_accuracy"] or 0.0) >= min_verified_acc for r in runs)
    return {
        "schema": SCHEMA,
        "version": __version__,
        "model": model,
        "model_sha256": model_sha256,
        "data": data,
        "selection": selection,
        "norm": norm,
        "normalisation": normalisation,
        "clip": None if clip is None else list(clip),
        "cascade": list(stages),
        "timeout": timeout,
        "runs": runs,
        "min_verified_acc": min_verified_acc,
        "passed": passed,
        "exit_code": EXIT_NOT_MET if passed is False else EXIT_MET,
        "wall_time": round(wall, 3),
    }
