"""The deadline is honoured: on an instance far too hard for the time given, BaB (and verify) come back
with `timeout` promptly. Loose on purpose (deadline + 2 s): this checks the deadline, not speed."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bab.nets import Net, write_onnx, write_vnnlib
from verifier.bab.input_split import InputSplitConfig, input_split_bab

SLACK = 2.0


def hard_instance() -> tuple[Net, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """y = relu(w·x) - relu(w·x) (two hidden neurons with the same weights) is 0 everywhere, so
    "y >= 1e-3" never holds; but every box the hyperplane w·x = 0 crosses keeps a relaxation gap
    of about its width, and in 8 dims covering that hyperplane with boxes thin enough takes far
    more boxes than any test can bound: nothing decides it, nothing can find a counterexample."""
    w = np.random.default_rng(1).normal(size=(1, 8)).astype(np.float32).astype(np.float64)
    net = Net(((np.concatenate([w, w]), np.zeros(2)), (np.array([[1.0, -1.0]]), np.zeros(1))))
    return net, -np.ones(8), np.ones(8), np.array([[-1.0]]), np.array([1e-3])


@pytest.mark.parametrize("budget", [0.5, 1.5])
@pytest.mark.parametrize("batch_size,intermediate", [(2048, "crown"), (64, "crown"), (256, "alpha")])
def test_input_split_returns_timeout_promptly(budget: float, batch_size: int, intermediate: str) -> None:
    net, lo, hi, C, d = hard_instance()
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731

    def is_counterexample(x: torch.Tensor) -> bool:
        xs = x.detach().double().numpy()
        return bool(np.all(xs >= lo) and np.all(xs <= hi) and (C @ net(xs) + d <= 0).all())

    start = time.monotonic()
    out = input_split_bab(net.graph(), t(lo), t(hi), t(C), t(d), start + budget, is_counterexample,
                          InputSplitConfig(batch_size=batch_size, intermediate=intermediate))
    elapsed = time.monotonic() - start
    assert elapsed <= budget + SLACK, f"returned {elapsed - budget:.2f} s after its deadline"
    assert out.verdict == "timeout", out
    assert out.domains > 0 and out.margin <= 0


def test_a_deadline_already_passed_bounds_nothing() -> None:
    net, lo, hi, C, d = hard_instance()
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    out = input_split_bab(net.graph(), t(lo), t(hi), t(C), t(d), time.monotonic() - 1.0, lambda x: False)
    assert out.verdict == "timeout" and out.domains == 0


def test_verify_returns_timeout_promptly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from verifier.api import verify

    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path / "cache"))
    net, lo, hi, C, d = hard_instance()
    onnx_path = write_onnx(net, tmp_path / "hard.onnx")
    spec = write_vnnlib(tmp_path / "hard.vnnlib", lo, hi, 1, ["(assert (>= Y_0 0.001))"])
    timeout = 4.0
    start = time.monotonic()
    result = verify(str(onnx_path), str(spec), timeout=timeout, device="cpu")
    elapsed = time.monotonic() - start
    assert elapsed <= timeout + SLACK, f"verify returned {elapsed - timeout:.2f} s after its timeout"
    assert result.verdict == "timeout", result
    if result.times.get("load", timeout) < timeout / 2:  # loading left time for the search: it ran
        assert "bab" in result.times, result.times
