"""Tiny ONNX classifiers and data sets written per test session; every test gets its own graph cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.model.onnx_builders import init, save


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "verifier-cache"
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(root))
    return root


def mlp_onnx(path: Path, sizes: tuple[int, ...], seed: int, input_shape: tuple[int, ...] | None = None) -> Path:
    """Gemm/Relu MLP with seeded weights; with input_shape (C, H, W) a Flatten comes first."""
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "input"
    if input_shape is not None:
        nodes.append(helper.make_node("Flatten", ["input"], ["flat"], axis=1))
        prev = "flat"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        out = "output" if i == len(sizes) - 2 else f"z{i}"
        inits += [init(f"W{i}", (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)),
                  init(f"b{i}", (0.1 * rng.standard_normal(n_out)).astype(np.float32))]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [out], transB=1))
        if out != "output":
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"]))
            prev = f"h{i}"
    shape = [1, *(input_shape or (sizes[0],))]
    return save(path, nodes, [("input", shape)], [("output", [1, sizes[-1]])], inits)


def ort_logits(path: Path, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"input": xi.reshape((1,) + shape).astype(np.float32)})[0]
                           for xi in x])


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 4-8-8-3 MLP and 24 samples in [0, 1]^4 labelled by the model itself, except sample 0 (wrong label)."""
    root = tmp_path_factory.mktemp("tiny")
    model = mlp_onnx(root / "tiny.onnx", (4, 8, 8, 3), seed=1)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(24, 4))
    y = ort_logits(model, x, (4,)).argmax(1)
    y[0] = (y[0] + 1) % 3
    data = root / "tiny.npz"
    np.savez(data, x=x, y=y)
    return {"model": model, "data": data, "x": x, "y": y}
