"""`--semantics float32`: an unsat must hold for the network as onnxruntime evaluates it in float32.

Float traps: networks whose real-valued output provably meets the property while their float32 evaluation
(onnxruntime) violates it, by large cancellations. `real` proves them (in float64, where our own forward
pass does not round the same way, so the attack finds nothing); `float32` must not say unsat.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import helper

from tests.bab.nets import write_vnnlib
from tests.examples import ROBUST, TOY
from tests.model.onnx_builders import init, save
from verifier.api import verify
from verifier.cli import main


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


def _mlp(path: Path, layers: list[tuple[list[list[float]], list[float]]], n_in: int) -> Path:
    """Gemm layers with a Relu between each two (the output layer has none)."""
    nodes, inits, x = [], [], "X"
    for i, (W, b) in enumerate(layers):
        inits += [init(f"W{i}", np.array(W, np.float32)), init(f"b{i}", np.array(b, np.float32))]
        out = "Y" if i == len(layers) - 1 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [out], transB=1))
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        x = out
    return save(path, nodes, [("X", [1, n_in])], [("Y", [1, len(layers[-1][1])])], inits)


# name: (layers, n_in, box lower, box upper, threshold t: the spec's violation is Y_0 <= t, a float32 point)
TRAPS = {
    # (x + 1e8) - 1e8: float32 rounds x + 1e8 to a multiple of 8, so y = 0 <= 0.25, while real y = x >= 0.5
    "bias cancellation": ([([[1.0]], [1e8]), ([[1.0]], [-1e8])], 1, [0.5], [1.0], 0.25),
    # a sum of huge +/- terms: h0 = x0 + 1e8 x1, h1 = 1e8 x1, y = h0 - h1 (x1 = 1): real y = x0
    "huge +/- terms": ([([[1.0, 1e8], [0.0, 1e8]], [0.0, 0.0]), ([[1.0, -1.0]], [0.0])], 2,
                       [0.5, 1.0], [1.0, 1.0], 0.25),
    # mild: (x + 6000) - 6000 with x in [0.50015, 0.5002]: float32 spacing at 6000 is 2^-11, so y = 0.5
    # there, while the real margin (1.2e-4) keeps the attack from replaying any point
    "thin margin": ([([[1.0]], [6000.0]), ([[1.0]], [-6000.0])], 1, [0.50015], [0.5002], 0.50003),
}


def _trap(name: str, tmp_path: Path) -> tuple[Path, Path]:
    layers, n_in, lo, hi, t = TRAPS[name]
    model = _mlp(tmp_path / "trap.onnx", layers, n_in)
    spec = write_vnnlib(tmp_path / "trap.vnnlib", np.array(lo), np.array(hi), 1, [f"(assert (<= Y_0 {t!r}))"])
    return model, spec


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_onnxruntime_really_violates_the_trap(name: str, tmp_path: Path) -> None:
    model, _ = _trap(name, tmp_path)
    layers, n_in, lo, hi, t = TRAPS[name]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.array(lo, np.float32).reshape(1, n_in)
    y = float(session.run(None, {"X": x})[0][0, 0])
    real = float(lo[0])  # every trap computes y = x_0 in real arithmetic
    assert real > t and y <= t, (real, y, t)


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_real_proves_the_trap_and_float32_does_not(name: str, tmp_path: Path) -> None:
    model, spec = _trap(name, tmp_path)
    real = verify(str(model), str(spec), semantics="real", dtype="float64", check_model=False, timeout=120,
                  device="cpu")
    assert real.verdict == "unsat", real
    assert real.to_json()["semantics"] == "real"
    for dtype in ("float64", "float32"):
        f32 = verify(str(model), str(spec), semantics="float32", dtype=dtype, check_model=False, timeout=8,
                     device="cpu")
        assert f32.verdict != "unsat", (dtype, f32)
        assert f32.verdict in ("sat", "unknown", "timeout"), f32
        assert f32.to_json()["semantics"] == "float32"


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_float32_never_proves_the_trap_by_relu_split(name: str, tmp_path: Path) -> None:
    model, spec = _trap(name, tmp_path)
    for bab in ("relu", "none"):
        res = verify(str(model), str(spec), semantics="float32", dtype="float64", check_model=False,
                     timeout=10, device="cpu", bab=bab)
        assert res.verdict != "unsat", (bab, res)


def test_float32_still_proves_an_ordinary_property_and_says_so() -> None:
    res = CliRunner().invoke(main, ["verify", TOY, ROBUST, "--json", "--semantics", "float32", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["verdict"] == "unsat" and doc["semantics"] == "float32"


def test_bad_semantics_is_bad_input(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["verify", TOY, ROBUST, "--semantics", "float16"])
    assert res.exit_code == 3  # bad input
    api = verify(TOY, ROBUST, semantics="float16")
    assert api.verdict == "error" and api.exit_code == 3 and "semantics" in api.message


def test_run_passes_the_semantics_on(tmp_path: Path) -> None:
    results = tmp_path / "out.jsonl"
    res = CliRunner().invoke(main, ["run", "--model", TOY, ROBUST, "--semantics", "float32", "--results",
                                    str(results), "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    record = json.loads(results.read_text().splitlines()[0])
    assert record["verdict"] == "unsat"
    assert "float32" in json.dumps(record)
