"""The final margin of an undecided run is the best bound branch and bound reached, not the root's (issue 14)."""
from __future__ import annotations

import pytest

from tests.examples import ACAS
from verifier.api import verify

PROP_2 = ACAS.replace("models/acasxu_1_1.onnx", "specs/acasxu_prop_2.vnnlib")


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


@pytest.fixture(scope="module")
def undecidable(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Prop 2's box with the clause Y_0 == v, v half a float32 ulp above Y_0 at the box's centre: the real
    network meets it on a whole level set (so no bound ever proves it), the float32 one nowhere (so no
    counterexample replays). Undecided at any timeout, unlike prop 2 itself, which gets proved as the
    engine gets faster (in about 3 s by now)."""
    import numpy as np
    import onnxruntime as ort

    from tests.bab.nets import write_vnnlib
    from verifier.spec.vnnlib import parse_vnnlib

    prop = parse_vnnlib(PROP_2).properties[0]
    centre = ((prop.lower + prop.upper) / 2).astype(np.float32)
    session = ort.InferenceSession(ACAS, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: centre.reshape(session.get_inputs()[0].shape)}
    y0 = np.float32(session.run(None, feed)[0].reshape(-1)[0])
    v = float(y0) + float(np.spacing(y0)) / 2
    path = tmp_path_factory.mktemp("spec") / "level_set.vnnlib"
    write_vnnlib(path, prop.lower, prop.upper, 5, [f"(assert (<= Y_0 {v!r}))", f"(assert (>= Y_0 {v!r}))"])
    return str(path)


@pytest.mark.parametrize("bab", ["input", "relu"])
def test_timeout_reports_the_bound_branch_and_bound_reached(bab: str, undecidable: str) -> None:
    root = verify(ACAS, undecidable, timeout=30, bab="none", method="crown", check_model=False)
    assert root.verdict == "unknown" and root.bab is None
    res = verify(ACAS, undecidable, timeout=3, bab=bab, method="crown", check_model=False)
    assert res.verdict == "timeout", res.message
    assert res.bab is not None and res.bab["domains"] > 0
    assert root.margin < res.margin <= 0  # tighter than the root's, still not a proof
    assert res.to_json()["bab"] == res.bab and res.properties[0].margin == res.margin
    if bab == "input":
        assert res.bab["open"] > 0
