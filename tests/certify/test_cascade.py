"""The cascade: each sample leaves at the first stage that decides it, and later stages never see it."""
from __future__ import annotations

import pytest
import torch

from verifier.certify import stages
from verifier.certify.cascade import CascadeConfig, certify_chunk, check_stages
from verifier.certify.network import load_network
from verifier.errors import InputError


@pytest.fixture
def net(tiny):
    return load_network(str(tiny["model"]), None, "cpu")


@pytest.fixture
def calls(monkeypatch):
    """Every batched bound call: (stage, batch size)."""
    seen: list[tuple[str, int]] = []
    original = stages.bound_rows

    def counting(stage, graph, lower, upper, C, deadline=None, ball=None):
        seen.append((stage, lower.shape[0]))
        return original(stage, graph, lower, upper, C, deadline, ball)

    monkeypatch.setattr(stages, "bound_rows", counting)
    return seen


def _run(net, tiny, eps, cascade, timeout=10.0):
    records = []
    certify_chunk(net, tiny["x"], tiny["y"], range(len(tiny["y"])),
                  CascadeConfig(eps=eps, clip=(0.0, 1.0), stages=cascade, timeout=timeout), records.append, "m")
    assert sorted(r["index"] for r in records) == list(range(len(tiny["y"])))  # one record per sample
    return {r["index"]: r for r in records}


def test_a_sample_decided_by_ibp_is_not_rerun(net, tiny, calls):
    """Find an eps where IBP proves some samples but not all; CROWN must get exactly the rest."""
    for eps in (0.02, 0.05, 0.1, 0.2):
        calls.clear()
        recs = _run(net, tiny, eps, ("ibp", "crown"))
        by_ibp = [r for r in recs.values() if r["stage"] == "ibp"]
        later = [r for r in recs.values() if r["stage"] not in ("clean", "ibp")]
        if by_ibp and later:
            break
    else:
        pytest.fail("no eps splits the samples between IBP and later stages")
    assert calls[0] == ("ibp", len(tiny["y"]) - 1)  # everything but the misclassified sample
    assert calls[1:] == [("crown", len(later))]
    for r in by_ibp:
        assert r["verdict"] == "verified" and set(r["times"]) == {"clean", "ibp"} and r["margin_lb"] > 0
    for r in later:
        assert "crown" in r["times"]


def test_misclassified_sample_is_counted_not_verified(net, tiny, calls):
    recs = _run(net, tiny, 1e-4, ("pgd", "ibp", "crown"))
    assert recs[0]["verdict"] == "misclassified" and recs[0]["stage"] == "clean"
    assert recs[0]["prediction"] != recs[0]["label"] and set(recs[0]["times"]) == {"clean"}
    assert recs[0]["margin_lb"] is None and recs[0]["margin_ub"] < 0
    assert all(r["verdict"] == "verified" for i, r in recs.items() if i != 0)  # a tiny eps proves the rest
    assert calls == [("ibp", len(tiny["y"]) - 1)]


def test_attack_falsifies_only_what_replays(net, tiny):
    """At a large eps PGD finds counterexamples; each is checked on onnxruntime (margin_ub <= 0 there)."""
    recs = _run(net, tiny, 0.5, ("pgd", "ibp"))
    falsified = [r for r in recs.values() if r["verdict"] == "falsified"]
    assert falsified and all(r["stage"] == "pgd" and r["margin_ub"] <= 0 for r in falsified)
    for r in recs.values():
        if r["verdict"] == "verified":
            assert r["margin_lb"] > 0


def test_branch_and_bound_decides_what_bounds_leave_open(net, tiny):
    """Without bound stages before it, BaB (verifier.api's solver) decides every sample itself, and no
    sample is both proved and attacked: verified ones have margin_lb > 0, falsified ones were replayed."""
    recs = _run(net, tiny, 0.08, ("bab",))
    decided = [r for r in recs.values() if r["stage"] == "bab"]
    assert len(decided) == len(tiny["y"]) - 1
    assert {r["verdict"] for r in decided} <= {"verified", "falsified"}
    assert all(r["margin_lb"] > 0 for r in decided if r["verdict"] == "verified")
    pgd = _run(net, tiny, 0.08, ("pgd",))  # no sample BaB proved can be attacked
    assert not any(pgd[i]["verdict"] == "falsified" for i, r in recs.items() if r["verdict"] == "verified")


def test_time_budget_turns_open_samples_into_timeouts(net, tiny, monkeypatch):
    def slow(stage, graph, lower, upper, C, deadline=None, ball=None):
        import time
        time.sleep(0.05)
        return torch.full((lower.shape[0], C.shape[1]), -1.0)

    monkeypatch.setattr(stages, "bound_rows", slow)
    recs = _run(net, tiny, 0.1, ("ibp", "crown"), timeout=1e-3)
    assert all(r["verdict"] == "timeout" and r["stage"] is None for i, r in recs.items() if i != 0)
    recs = _run(net, tiny, 0.1, ("ibp",), timeout=100.0)
    assert all(r["verdict"] == "unknown" for i, r in recs.items() if i != 0)


def test_thin_proofs_are_redone_in_float64(net, tiny, monkeypatch):
    """A float32 bound barely above 0 counts only if the float64 bound agrees."""
    real = stages.bound_rows

    def fake(stage, graph, lower, upper, C, deadline=None, ball=None):
        if lower.dtype == torch.float64:
            return real(stage, graph, lower, upper, C, deadline)
        return torch.full((lower.shape[0], C.shape[1]), 1e-6)  # "proved", but thinly

    monkeypatch.setattr(stages, "bound_rows", fake)
    recs = _run(net, tiny, 0.3, ("ibp",))
    monkeypatch.setattr(stages, "bound_rows", real)
    truth = _run(net, tiny, 0.3, ("ibp",))
    assert any(r["verdict"] == "unknown" for r in truth.values())  # fake proofs the recheck must reject
    assert {i: r["verdict"] for i, r in recs.items()} == {i: r["verdict"] for i, r in truth.items()}


def test_stage_names_checked():
    assert check_stages(["pgd", "ibp", "bab"]) == ("pgd", "ibp", "bab")
    for bad, match in ((["ibp", "pgd"], "in the order"), (["ibp", "ibp"], "once each"), (["lp"], "unknown stage"),
                       ([""], "at least one")):
        with pytest.raises(InputError, match=match):
            check_stages(bad)
