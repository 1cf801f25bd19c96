"""A planted counterexample: a narrow ReLU bump that random sampling and gradients cannot find.

bump(x) = relu(1 - K * sum_i (relu(x_i - p_i) + relu(p_i - x_i))) = relu(1 - K |x - p|_1): it is 1 at p,
0 (with zero gradient) outside the L1 ball of radius 1/K, and "bump >= 1/2" holds only within 1/(2K)
of p: a region inside a cube of side 1e-3 for K = 1000, in a box of side 2. Branch and bound must find
it (or run out of time), never claim unsat; above the bump's maximum it must prove unsat.
Also end to end: the same networks as ONNX files (Gemm + Relu, opset 13) with VNN-LIB specs.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bab.nets import Net, write_onnx, write_vnnlib
from verifier.attack.pgd import AttackConfig, pgd_attack
from verifier.bab.input_split import InputSplitConfig, input_split_bab

some = settings(deadline=None, max_examples=max(10, settings.default.max_examples // 5))


def bump_net(centres: list[np.ndarray], K: float) -> Net:
    """One output per centre p: relu(1 - K |x - p|_1), then an identity Gemm (the outputs stay as they are)."""
    n = len(centres[0])
    W1 = np.concatenate([np.concatenate([np.eye(n), -np.eye(n)]) for _ in centres])
    b1 = np.concatenate([np.concatenate([-p, p]) for p in centres])
    W2 = np.kron(np.eye(len(centres)), -K * np.ones((1, 2 * n)))
    b2 = np.ones(len(centres))
    m = len(centres)
    return Net(((W1, b1), (W2, b2), (np.eye(m), np.zeros(m))))


def random_centre(rng: np.random.Generator, n: int) -> np.ndarray:
    """A point well inside [-1, 1]^n, in float32 so the ONNX file holds it exactly."""
    return rng.uniform(-0.9, 0.9, n).astype(np.float32).astype(np.float64)


def _l1(x: np.ndarray, p: np.ndarray) -> float:
    return float(np.abs(np.asarray(x, dtype=np.float64) - p).sum())


def _t(a: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype)


@some
@given(st.integers(2, 3), st.integers(0, 2**32 - 1), st.sampled_from([1e3, 1e4]),
       st.sampled_from([torch.float64, torch.float32]))
def test_bab_finds_the_planted_counterexample(n: int, seed: int, K: float, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(seed)
    p = random_centre(rng, n)
    net = bump_net([p], K)
    lo, hi = -np.ones(n), np.ones(n)
    C, d = np.array([[-1.0]]), np.array([0.5])  # violation: bump >= 0.5

    # random sampling misses it, and so does PGD (no gradient outside the bump)
    sample = rng.uniform(-1, 1, (20_000, n))
    assert net(sample).max() < 0.5
    (cand,) = pgd_attack(net.graph(), _t(lo), _t(hi), [(_t(C), _t(d))], AttackConfig(restarts=16, steps=20))
    assert cand.objective > 0

    accepted = []

    def is_counterexample(x: torch.Tensor) -> bool:
        xs = x.detach().double().numpy()
        ok = bool(np.all(xs >= lo) and np.all(xs <= hi) and net(xs)[0] >= 0.5)
        accepted.extend([xs] if ok else [])
        return ok

    start = time.monotonic()
    out = input_split_bab(net.graph(dtype), _t(lo, dtype), _t(hi, dtype), _t(C, dtype), _t(d, dtype),
                          start + 10.0, is_counterexample)
    assert out.verdict != "unsat", f"unsat claimed with margin {out.margin} but bump({p.tolist()}) = 1"
    assert out.verdict in ("sat", "timeout"), out
    if out.verdict == "sat":
        x = out.counterexample.double().numpy()
        assert _l1(x, p) <= 0.5 / K * (1 + 1e-6) and np.all(np.abs(x - p) <= 5e-4 * 1e3 / K + 1e-12)
        assert any(np.array_equal(x, a) for a in accepted)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n", [2, 3])
def test_above_the_bump_is_unsat_and_at_its_tip_never_unsat(n: int, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(n)
    p = random_centre(rng, n)
    net = bump_net([p], 1e3)
    lo, hi = -np.ones(n), np.ones(n)
    run = lambda thr: input_split_bab(  # noqa: E731
        net.graph(dtype), _t(lo, dtype), _t(hi, dtype), _t([[-1.0]], dtype), _t([thr], dtype),
        time.monotonic() + 10.0, lambda x: bool(net(x.double().numpy())[0] >= thr))
    above = run(1.0 + 1e-3)
    assert above.verdict == "unsat" and above.margin > 0
    # bump >= 1 - 1e-7 holds only within 1e-10 of p (narrower than min_width): searching may get stuck
    # or run out of time, or even land on it, but the box holding p can never be proved
    tip = run(1.0 - 1e-7)
    assert tip.verdict in ("sat", "unknown", "timeout"), tip


def test_two_bumps_never_meet_needs_branch_and_bound() -> None:
    """bump_p >= 1/2 and bump_q >= 1/2: each row alone is satisfiable, together never (p, q apart)."""
    rng = np.random.default_rng(5)
    p, q = random_centre(rng, 2), random_centre(rng, 2)
    net = bump_net([p, q], 1e3)
    lo, hi = -np.ones(2), np.ones(2)
    C, d = -np.eye(2), np.array([0.5, 0.5])
    for mix in (True, False):
        out = input_split_bab(net.graph(), _t(lo), _t(hi), _t(C), _t(d), time.monotonic() + 20.0,
                              lambda x: False, InputSplitConfig(mix_rows=mix))
        assert out.verdict == "unsat" and out.domains > 1, out
    # q moved onto p: now both hold near p, and nothing may prove otherwise
    net = bump_net([p, p + np.array([2e-4, 0.0])], 1e3)
    out = input_split_bab(net.graph(), _t(lo), _t(hi), _t(C), _t(d), time.monotonic() + 10.0,
                          lambda x: bool(np.all(net(x.double().numpy()) >= 0.5)))
    assert out.verdict in ("sat", "timeout"), out


# ---------------------------------------------------------------- end to end: ONNX + VNN-LIB files


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "verifier-cache"
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(root))
    return root


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": np.asarray(x, dtype=np.float32).reshape(1, -1)})[0].reshape(-1).astype(np.float64)


@pytest.mark.parametrize("n", [2, 3])
def test_end_to_end_finds_the_planted_counterexample(tmp_path: Path, cache_dir: Path, n: int) -> None:
    from verifier.api import verify

    rng = np.random.default_rng(10 + n)
    p = random_centre(rng, n)
    net = bump_net([p], 1e3)
    lo, hi = -np.ones(n), np.ones(n)
    onnx_path = write_onnx(net, tmp_path / "bump.onnx")
    spec = write_vnnlib(tmp_path / "bump.vnnlib", lo, hi, 1, ["(assert (>= Y_0 0.5))"])
    start = time.monotonic()
    result = verify(str(onnx_path), str(spec), timeout=20, device="cpu")
    assert time.monotonic() - start < 20 + 5
    assert result.verdict != "unsat", result
    assert result.verdict in ("sat", "unknown", "timeout"), result
    if result.verdict == "sat":
        cex = result.counterexample
        x = np.array(cex.x)
        assert np.all(x >= lo) and np.all(x <= hi) and _l1(x, p) <= 1e-3
        y = _ort(onnx_path, x)
        assert y[0] >= 0.5 and np.allclose(y, cex.y)
    # found in ~1 s: by the homotopy starts of the first attack (the leaky relus give the bump a gradient)
    # or else by input-split branch and bound (test_input_split_finds_* covers that engine on its own)
    assert result.verdict == "sat" and result.method in ("pgd", "bab"), result


def test_end_to_end_above_the_bump_is_unsat(tmp_path: Path, cache_dir: Path) -> None:
    from verifier.api import STAGE_ORDER, verify

    threshold = 1.001  # the bump's maximum is 1, at p

    p = random_centre(np.random.default_rng(3), 2)
    onnx_path = write_onnx(bump_net([p], 1e3), tmp_path / "bump.onnx")
    spec = write_vnnlib(tmp_path / "bump.vnnlib", -np.ones(2), np.ones(2), 1, [f"(assert (>= Y_0 {threshold}))"])
    result = verify(str(onnx_path), str(spec), timeout=20, device="cpu")
    assert result.verdict == "unsat" and result.method in STAGE_ORDER and result.margin > 0, result


def test_end_to_end_disjoint_bumps_are_proved_by_branch_and_bound(tmp_path: Path, cache_dir: Path) -> None:
    from verifier.api import verify

    rng = np.random.default_rng(5)
    p, q = random_centre(rng, 2), random_centre(rng, 2)
    onnx_path = write_onnx(bump_net([p, q], 1e3), tmp_path / "bumps.onnx")
    spec = write_vnnlib(tmp_path / "bumps.vnnlib", -np.ones(2), np.ones(2), 2,
                        ["(assert (>= Y_0 0.5))", "(assert (>= Y_1 0.5))"])
    result = verify(str(onnx_path), str(spec), timeout=20, device="cpu")
    assert result.verdict == "unsat" and result.method == "bab", result
