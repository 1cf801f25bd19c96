"""`certify --norm l2 / l1`: the summary and records say the norm, branch and bound (ReLU splitting over
the ball) proves samples alpha-CROWN leaves open, verified samples hold at points of the (clipped) ball
checked on onnxruntime, and records of another norm are not resumed."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.certify.conftest import ort_logits
from verifier.cli import main


def invoke(tiny, *args: str):
    return CliRunner().invoke(main, ["certify", str(tiny["model"]), "--data", str(tiny["data"]), *args])


def ball_points(rng: np.random.Generator, centre: np.ndarray, eps: float, p: float, n: int) -> np.ndarray:
    """n points of the Lp ball around centre, half of them on its surface, clipped to [0, 1]."""
    d = rng.standard_normal((n, centre.size)) if p == 2 else rng.laplace(size=(n, centre.size))
    d /= np.linalg.norm(d, ord=p, axis=1, keepdims=True)
    d[: n // 2] *= rng.uniform(0, 1, size=(n // 2, 1))
    return np.clip(centre + eps * d, 0, 1)


# At these radii alpha-CROWN verifies 3 of the 24 samples (l2) and 8 (l1), branch and bound 6 and 11.
@pytest.mark.parametrize("norm, p, eps", [("l2", 2.0, 0.3), ("l1", 1.0, 0.2)])
def test_lp_certify_is_sound_and_recorded(tiny, tmp_path, norm, p, eps):
    results = tmp_path / "r.jsonl"
    res = invoke(tiny, "--eps", str(eps), "--norm", norm, "--clip", "0", "1", "--json", "--results", str(results))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["norm"] == norm and doc["cascade"][-1] == "bab"
    (run,) = doc["runs"]
    assert run["verified_accuracy"] <= run["attack_accuracy"] <= run["clean_accuracy"]
    assert run["verified_after"]["bab"] > run["verified_after"]["alpha"], "BaB should prove what alpha-CROWN cannot"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["norm"] for r in records} == {norm} and len(records) == 24
    rng = np.random.default_rng(0)
    verified = [r for r in records if r["verdict"] == "verified"]
    assert any(r["stage"] == "bab" for r in verified), "the tiny network should have samples verified by BaB"
    for r in verified:
        x = tiny["x"][r["index"]]
        logits = ort_logits(tiny["model"], ball_points(rng, x, eps, p, 200), (4,))
        others = np.delete(logits, r["label"], axis=1)
        margin = logits[:, r["label"]] - others.max(axis=1)
        assert margin.min() >= r["margin_lb"] - 1e-5, f"sample {r['index']}: bound {r['margin_lb']} broken"


def test_lp_balls_are_inside_linf_results(tiny):
    """The L2 ball of radius eps lies in the L-inf ball of radius eps: it cannot verify fewer samples."""
    acc = {}
    for norm in ("linf", "l2"):
        res = invoke(tiny, "--eps", "0.3", "--norm", norm, "--cascade", "pgd,ibp,crown,alpha", "--json")
        assert res.exit_code == 0, res.output
        acc[norm] = json.loads(res.output)["runs"][0]
    assert acc["l2"]["verified_accuracy"] >= acc["linf"]["verified_accuracy"]
    assert acc["l2"]["attack_accuracy"] >= acc["linf"]["attack_accuracy"]


def test_resume_refuses_records_of_another_norm(tiny, tmp_path):
    results = tmp_path / "r.jsonl"
    assert invoke(tiny, "--eps", "0.1", "--cascade", "ibp", "--results", str(results)).exit_code == 0
    res = invoke(tiny, "--eps", "0.1", "--norm", "l2", "--cascade", "ibp", "--results", str(results), "--resume")
    assert res.exit_code == 3 and "another norm" in res.output


def test_tightness_over_an_l2_ball(tiny):
    """Tightness over the ball stays a ratio in (0, 1], and the ball's ReLU states never have more unstable
    neurons than those of its bounding box (the first layer is bounded exactly over the ball)."""
    out = {}
    for norm in ("linf", "l2"):
        res = invoke(tiny, "--eps", "0.4", "--norm", norm, "--cascade", "ibp", "--report", "tightness", "--json")
        assert res.exit_code == 0, res.output
        out[norm] = json.loads(res.output)["runs"][0]["tightness"]
    assert 0 < out["l2"]["mean"] <= 1
    for box_layer, ball_layer in zip(out["linf"]["relu_states"], out["l2"]["relu_states"]):
        assert ball_layer["ibp"]["unstable"] <= box_layer["ibp"]["unstable"] + 1e-12
