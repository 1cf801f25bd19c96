"""Does our Graph compute what onnxruntime computes on the same file?

The translation is ours, so it is checked on every fresh conversion: a silent mismatch would make
every verification result about a different network. Our graph is evaluated in float32 (what the
bound code runs) and float64 (so a float32-only coincidence cannot hide a real difference).
onnxruntime is imported here only.
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import torch

from verifier.errors import ModelError
from verifier.model.onnx_file import describe, session_source

if TYPE_CHECKING:  # pragma: no cover
    from verifier.model.loader import Model

MAX_CORNERS = 16
N_RANDOM = 8


def check_against_onnxruntime(model: "Model", points: np.ndarray, atol: float = 1e-4, rtol: float = 1e-4) -> float:
    """Max abs difference between our graph and onnxruntime on `points` (N, n_inputs); ModelError beyond tolerance."""
    points = np.asarray(points, dtype=np.float32).astype(np.float64)  # both sides see the same float32 inputs
    n_in = model.graph.n_inputs
    if points.ndim != 2 or points.shape[1] != n_in:
        raise ValueError(f"points must have shape (N, {n_in}), got {points.shape}")
    expected = run_onnxruntime(model, points)
    worst = 0.0
    for dtype in (torch.float32, torch.float64):
        ours = run_graph(model, points, dtype)
        if ours.shape != expected.shape:
            raise ModelError(f"{model.path}: the converted graph gives {ours.shape[1]} outputs per sample, "
                             f"onnxruntime {expected.shape[1]}")
        diff = np.abs(ours - expected)
        worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
        if not np.all(diff <= atol + rtol * np.abs(expected)):  # also catches NaN
            dtype_name = str(dtype).removeprefix("torch.")
            raise ModelError(f"{model.path}: the converted graph disagrees with onnxruntime: max abs difference "
                             f"{float(np.max(diff)):.3g} in {dtype_name} (atol={atol:g}, rtol={rtol:g})")
    return worst


def run_graph(model: "Model", points: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Our graph on all points at once (the batch dimension is ours), as (N, n_outputs) float64."""
    graph = model.graph.to("cpu", dtype)
    with torch.no_grad():
        y = graph.forward(torch.as_tensor(points, dtype=dtype))
    return y.reshape(len(points), -1).to(torch.float64).numpy()


def run_onnxruntime(model: "Model", points: np.ndarray) -> np.ndarray:
    """onnxruntime on the file, as (N, n_outputs) float64.

    All points in one call when the batch dimension is symbolic; one per call when the file fixes it
    to 1, or when a symbolic-batch file still only works per sample (e.g. a Reshape to [1, -1]).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # quiet: IR-3 files warn about initializers as inputs; failed batched tries log errors
    try:
        session = ort.InferenceSession(session_source(model.path), opts, providers=["CPUExecutionProvider"])
        in_type = next((i.type for i in session.get_inputs() if i.name == model.onnx_input_name), "tensor(float)")
        sample = tuple(model.onnx_input_shape[1:]) if model.onnx_batched else \
            tuple(1 if d == -1 else d for d in model.onnx_input_shape)
        x = points.reshape((len(points),) + sample).astype(np.float64 if in_type == "tensor(double)" else np.float32)

        def run(batch: np.ndarray) -> np.ndarray:
            return np.asarray(session.run(None, {model.onnx_input_name: batch})[0], dtype=np.float64)

        if model.onnx_batched and model.onnx_input_shape[0] != 1 and len(x) > 1:
            y = _try_batched(run, x)
            if y is not None:
                return y
        one = (lambda i: x[i:i + 1]) if model.onnx_batched else (lambda i: x[i])
        return np.concatenate([run(one(i)).reshape(1, -1) for i in range(len(x))])
    except Exception as e:  # onnxruntime's own exception types are not importable uniformly
        raise ModelError(f"{model.path}: onnxruntime cannot run the file ({describe(e)})") from None


def _try_batched(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> Optional[np.ndarray]:
    """All points at once, or None when the file, despite its symbolic batch dim, only runs per sample."""
    try:
        y = run(x)
    except Exception:
        return None
    return y.reshape(len(x), -1) if y.ndim > 0 and y.shape[0] == len(x) else None


def sample_points(n: int, lower: Optional[np.ndarray] = None, upper: Optional[np.ndarray] = None,
                  seed: int = 0) -> np.ndarray:
    """Centre, up to MAX_CORNERS corners (random ones when there are more) and N_RANDOM points of the box."""
    lo, hi = _finite_box(_bound(lower, -1.0, n), _bound(upper, 1.0, n))
    if np.any(lo > hi):
        raise ValueError("lower bound above upper bound")
    rng = np.random.default_rng(seed)
    if 2 ** n <= MAX_CORNERS:
        bits = np.array(list(itertools.product((0, 1), repeat=n)), dtype=bool)
    else:
        bits = rng.integers(0, 2, size=(MAX_CORNERS, n)).astype(bool)
    corners = np.where(bits, hi, lo)
    random = lo + (hi - lo) * rng.random((N_RANDOM, n))
    return np.vstack([(lo + hi)[None, :] / 2, corners, random])


def _bound(v: Optional[np.ndarray], default: float, n: int) -> np.ndarray:
    """A bound of any shape with 1 or n values (e.g. the spec's per-pixel box) as a flat (n,) array."""
    flat = np.asarray(default if v is None else v, dtype=np.float64).reshape(-1)
    if flat.size not in (1, n):
        raise ValueError(f"a bound must have 1 or {n} values, got {flat.size}")
    return np.broadcast_to(flat, (n,))


def _finite_box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unbounded sides get a unit-width stand-in so every sample point is finite."""
    lo = np.where(np.isfinite(lo), lo, np.where(np.isfinite(hi), hi - 1.0, -1.0))
    hi = np.where(np.isfinite(hi), hi, lo + 1.0)
    return lo, hi


def verify_equivalence(model: "Model", lower: Optional[np.ndarray] = None, upper: Optional[np.ndarray] = None,
                       seed: int = 0) -> float:
    """Compare with onnxruntime on points of the box ([-1, 1]^n by default); returns the max abs difference."""
    return check_against_onnxruntime(model, sample_points(model.graph.n_inputs, lower, upper, seed))
