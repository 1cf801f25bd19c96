"""Progress reports of a verify call: the throttle, and what the engine reports at each stage."""
from __future__ import annotations

import time

import pytest

from tests.examples import ACAS, ACAS_PROP1
from verifier.progress import SILENT, Progress, Reporter


def test_reporter_throttles_within_a_stage_but_passes_every_new_stage() -> None:
    seen: list[Progress] = []
    report = Reporter(seen.append, time.monotonic(), 10.0, interval=60.0)
    report("attack")
    report("bounds")
    for i in range(5):
        report("input split", domains=i)
    assert [p.stage for p in seen] == ["attack", "bounds", "input split"]
    assert seen[-1].domains == 0 and seen[-1].timeout == 10.0 and seen[-1].elapsed >= 0
    assert not report.due("input split") and report.due("relu split")


def test_silent_reporter_calls_nothing() -> None:
    assert not SILENT.active and not SILENT.due("attack")
    SILENT("attack", domains=3)  # no callback, no error


@pytest.mark.parametrize("bab,stage", [("input", "input split"), ("relu", "relu split")])
def test_verify_reports_stages_in_order_and_growing_domain_counts(bab: str, stage: str) -> None:
    """The bundled ACAS Xu property 1 needs branch and bound: either kind reports its domains."""
    from verifier.api import verify

    seen: list[Progress] = []
    result = verify(ACAS, ACAS_PROP1, progress=seen.append, bab=bab, timeout=4.0)
    stages = [p.stage for p in seen]
    before = ["load", "attack", "bounds"] + (["strong attack"] if bab == "relu" else [])
    assert stages[:len(before) + 1] == before + [stage] and set(stages[len(before):]) == {stage}
    bab_reports = [p for p in seen if p.stage == stage]
    domains = [p.domains for p in bab_reports]
    assert domains == sorted(domains) and domains[-1] > 0
    assert all(p.roots == 1 and 0 <= p.roots_done <= 1 and p.open >= 0 for p in bab_reports)
    assert all(p.elapsed <= p.timeout + 1.0 for p in seen)
    assert result.verdict in ("unsat", "timeout")
