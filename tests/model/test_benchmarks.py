"""Every supported benchmark network loads and matches onnxruntime on a batch of points.

One conversion per file: load without the built-in check, then run the check explicitly (25 points
of [-1, 1]^n evaluated by our graph as one batch) so its max difference can be asserted.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.model.onnx_builders import ops
from verifier.model.check import verify_equivalence
from verifier.model.loader import load_model

BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
SUPPORTED = ("acasxu", "mnist_fc", "reach_prob_density")
FILES = sorted(p for b in SUPPORTED for p in (BENCHMARKS / b / "onnx").glob("*.onnx"))


@pytest.mark.skipif(not FILES, reason=f"no benchmark networks under {BENCHMARKS}")
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_benchmark_network_matches_onnxruntime(path: Path) -> None:
    model = load_model(path, check=False, cache=False)
    assert verify_equivalence(model) < 1e-4
    kinds = ops(model)
    assert set(kinds) <= {"input", "reshape", "linear", "relu"}
    assert kinds[-1] == "linear" and kinds.count("linear") == kinds.count("relu") + 1
    if path.parent.parent.name == "acasxu":
        assert kinds == ["input", "reshape"] + ["linear", "relu"] * 6 + ["linear"]
        assert model.graph.input_shape == (1, 1, 5) and model.graph.output_shape == (5,)
    if path.parent.parent.name == "mnist_fc":
        assert model.graph.input_shape == (784, 1) and model.graph.output_shape == (10,)
