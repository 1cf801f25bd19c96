"""The differential test bed, short profile (the long one: `python bench/differential.py --minutes N`).

First the oracle itself is checked (the exported ONNX file computes what the ground truth solves; the MILP
minimum is never above sampled values and its minimiser attains it; the spec text parses back to the
case), then random nets x random specs x (method, bab) modes go through `verify`: never a wrong verdict,
never an error on valid input, every `sat` replays (see judge.py).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.differential.exact import clause_value, milp_minimum, sampled_minimum
from tests.differential.judge import MODES, judge
from tests.differential.networks import Net, float32_net, random_cnn, random_mlp, random_net, to_onnx
from tests.differential.planted import bump_case
from tests.differential.specs import make_case


def small_net(rng: np.random.Generator, kind: int) -> Net:
    """One of each shape in turn: relu MLP, residual MLP, CNN with max pool, sigmoid / tanh MLPs."""
    if kind % 5 == 2:
        return float32_net(random_cnn(rng, int(rng.integers(1, 5)), "relu", pool=True))
    act = ("relu", "relu", "relu", "sigmoid", "tanh")[kind % 5]
    return float32_net(random_mlp(rng, int(rng.integers(2, 13)), int(rng.integers(1, 4)), int(rng.integers(1, 6)),
                                  act, residual=kind % 5 == 1))


@pytest.mark.parametrize("seed", range(6))
def test_onnx_file_computes_the_reference_forward(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(3):
        net = float32_net(random_net(rng))
        sess = ort.InferenceSession(to_onnx(net).SerializeToString(), providers=["CPUExecutionProvider"])
        x = rng.uniform(-1, 1, size=(16, net.n_inputs))
        got = np.concatenate([sess.run(None, {"X": xi.reshape(1, *net.input_shape).astype(np.float32)})[0].reshape(1, -1)
                              for xi in x])
        want = net.forward(np.asarray(x, dtype=np.float32).astype(np.float64))
        assert np.allclose(got, want, atol=1e-4, rtol=1e-4), net.name


def test_padded_and_ceil_mode_pools_compute_the_reference_forward() -> None:
    """The generator's pools (2x2, the ResNet stem's padded 3x3, ceil_mode) agree with onnxruntime after tanh,
    whose negative values tell -inf padding from zero padding."""
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(30):
        net = float32_net(random_cnn(rng, 3, "tanh", pool=True))
        pools = [layer.onnx for layer in net.layers if layer.kind == "maxpool"]
        seen |= {(o["k"], o["pad"], o["ceil"]) for o in pools}
        sess = ort.InferenceSession(to_onnx(net).SerializeToString(), providers=["CPUExecutionProvider"])
        x = rng.uniform(-1, 1, size=(8, net.n_inputs)).astype(np.float32)
        got = np.concatenate([sess.run(None, {"X": xi.reshape(1, *net.input_shape)})[0].reshape(1, -1) for xi in x])
        assert np.allclose(got, net.forward(x.astype(np.float64)), atol=1e-4, rtol=1e-4), pools
    assert seen == {(2, 0, False), (3, 1, False), (2, 0, True)}


@pytest.mark.parametrize("seed", range(6))
def test_milp_minimum_is_exact(seed: int) -> None:
    """Never above any sampled value, attained (to the solver's tolerance) at its own minimiser."""
    rng = np.random.default_rng(100 + seed)
    net = small_net(rng, seed)
    if not net.is_piecewise_linear():
        net = float32_net(random_mlp(rng, 4, 2, 3))
    lo = rng.uniform(-1, 0, size=net.n_inputs)
    hi = lo + rng.uniform(0, 1, size=net.n_inputs)
    C, d = rng.normal(size=(2, net.n_outputs)), rng.normal(size=2)
    found = milp_minimum(net, lo, hi, C, d, time_limit=60)
    assert found is not None and found.exact
    assert abs(float(clause_value(net, found.x, C, d)[0]) - found.value) < 1e-5
    sampled = sampled_minimum(net, lo, hi, C, d, rng, samples=5000, rounds=20)
    assert found.value <= sampled.value + 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_spec_text_parses_back_to_the_case(seed: int) -> None:
    from verifier.spec.vnnlib import parse_vnnlib_text

    rng = np.random.default_rng(200 + seed)
    case = make_case(rng, small_net(rng, 3), margin=0.05, regression=True)
    spec = parse_vnnlib_text(case.text())
    boxes = {(tuple(np.float32(p.lower).tolist()), tuple(np.float32(p.upper).tolist())) for p in spec.properties}
    assert boxes == {(tuple(np.float32(lo).tolist()), tuple(np.float32(hi).tolist())) for lo, hi in case.boxes}
    for prop in spec.properties:
        rows = sorted((tuple(np.round(c.C, 6).ravel()), tuple(np.round(c.d, 6))) for c in prop.clauses)
        want = sorted((tuple(np.round(C, 6).ravel()), tuple(np.round(d, 6))) for C, d in case.clauses)
        assert rows == want


@pytest.mark.parametrize("seed", range(20))
def test_verify_is_never_wrong(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    net = small_net(rng, seed)
    margin = (0.05 if seed % 2 else -0.05) * float(rng.uniform(0.2, 1.0))
    case = make_case(rng, net, margin, time_limit=30.0, regression=net.n_outputs == 1)
    method, bab = MODES[seed % len(MODES)]
    v = judge(case, method, bab, timeout=3.0)
    assert not v.failure, (net.name, method, bab, v)


@pytest.mark.parametrize("n", [8, 20])
def test_planted_bumps_are_found(n: int) -> None:
    """Counterexamples that uniform sampling never hits (the ball is < 1e-7 of the box); one case on each
    side of the input-split / ReLU-split threshold (16 inputs). The 30-case figure: bench/planted.py."""
    case = bump_case(np.random.default_rng(n), n)
    v = judge(case, "auto", "auto", timeout=60.0)
    assert not v.failure and v.verdict == "sat", v


def _planted_case_8():  # type: ignore[no-untyped-def]
    """bench/planted.py's case 8 (16 inputs), whose bump input split's sampling missed for 30 s."""
    rng = np.random.default_rng(0)
    for n in np.linspace(5, 50, 30).round().astype(int)[:8]:  # generated in order, as bench/planted.py does
        case = bump_case(rng, int(n))
    return case


@pytest.mark.parametrize("min_inputs", [9, 17])
def test_strong_attacks_run_during_input_split_from_enough_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  min_inputs: int) -> None:
    """With input split's own counterexample search switched off, only the strong attacks run once input
    split has had `strong_attack_after` seconds can find the bump: they do from `strong_attack_min_inputs`
    inputs on (16 >= 9), and do not run below it (16 < 17), where the search just runs out of time. Their time
    (here at least a 1 s pause put before them) counts as the attack's, not branch and bound's."""
    import onnx

    from verifier import api
    from verifier.api import verify
    from verifier.bab.input_split import InputSplitSearch

    case = _planted_case_8()
    assert case.net.n_inputs == 16
    onnx.save(to_onnx(case.net), str(tmp_path / "net.onnx"))
    (tmp_path / "spec.vnnlib").write_text(case.text())
    monkeypatch.setattr(InputSplitSearch, "_try_points", lambda self, l, u, margin: None)
    strong = api._strong_attack

    def paused(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return strong(*args, **kwargs)

    monkeypatch.setattr(api, "_strong_attack", paused)
    res = verify(str(tmp_path / "net.onnx"), str(tmp_path / "spec.vnnlib"), timeout=6.0 if min_inputs > 16 else 30.0,
                 bab="input", device="cpu", strong_attack_min_inputs=min_inputs, strong_attack_after=0.5)
    if min_inputs <= 16:
        assert res.verdict == "sat" and res.method == "pgd", res
        assert res.times["attack"] >= 1.0 and 0.4 <= res.times["bab"] <= res.times["total"] - 1.0, res.times
    else:
        assert res.verdict in ("timeout", "unknown"), res
