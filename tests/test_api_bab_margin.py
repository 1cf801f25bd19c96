"""The final margin of an undecided run is the best bound branch and bound reached, not the root's (issue 14)."""
from __future__ import annotations

import pytest

from tests.examples import ACAS
from verifier.api import verify

PROP_2 = ACAS.replace("models/acasxu_1_1.onnx", "specs/acasxu_prop_2.vnnlib")  # not decided in a few seconds


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


@pytest.mark.parametrize("bab", ["input", "relu"])
def test_timeout_reports_the_bound_branch_and_bound_reached(bab: str) -> None:
    root = verify(ACAS, PROP_2, timeout=30, bab="none", method="crown", check_model=False)
    assert root.verdict == "unknown" and root.bab is None
    res = verify(ACAS, PROP_2, timeout=3, bab=bab, method="crown", check_model=False)
    assert res.verdict == "timeout", res.message
    assert res.bab is not None and res.bab["domains"] > 0
    assert root.margin < res.margin <= 0  # tighter than the root's, still not a proof
    assert res.to_json()["bab"] == res.bab and res.properties[0].margin == res.margin
    if bab == "input":
        assert res.bab["open"] > 0
