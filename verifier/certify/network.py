"""The network that is certified: the ONNX model with the input normalisation placed inside our graph
(a leading scale_shift node), so that the verified input is raw pixels and eps / clip are in pixel units.

Also here: the eps-box around a batch of samples (rounded outwards to the working dtype, so the box that is
bounded always contains the box that is claimed) and the onnxruntime replay of raw-pixel points.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Optional, Sequence

import numpy as np
import torch

from verifier.api import Problem
from verifier.errors import InputError
from verifier.model.graph import Graph, Node

RAW_INPUT = "certify_raw_input"


@dataclass(frozen=True)
class Normalisation:
    """x_model = (x_raw - mean) / std, per channel (or one value for all inputs, or one per input)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if any(s == 0 for s in self.std):
            raise InputError("--std: a standard deviation of 0 cannot normalise")

    def arrays(self, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """mean and std shaped to broadcast against one sample of `input_shape` (channels first)."""
        n = int(np.prod(input_shape))
        out = []
        for name, values in (("--mean", self.mean), ("--std", self.std)):
            v = np.asarray(values, dtype=np.float64)
            if v.size == 1:
                out.append(v.reshape(()))
            elif v.size == n:
                out.append(v.reshape(input_shape))
            elif len(input_shape) >= 2 and v.size == input_shape[0]:
                out.append(v.reshape((-1,) + (1,) * (len(input_shape) - 1)))
            else:
                channels = f", {input_shape[0]} (one per channel)" if len(input_shape) >= 2 else ""
                raise InputError(f"{name} has {v.size} values; the model's input {input_shape} needs 1{channels} "
                                 f"or {n} (one per input)")
        return out[0], out[1]

    def apply(self, x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
        """Normalise raw samples x (N, n_inputs) as the graph does, in float64."""
        mean, std = self.arrays(input_shape)
        shaped = x.reshape((len(x),) + input_shape)
        return ((shaped - mean) / std).reshape(len(x), -1)


def with_normalisation(graph: Graph, norm: Optional[Normalisation]) -> Graph:
    """The graph with a scale_shift node in front: its input becomes the raw, unnormalised sample.

    The old input node becomes the scale_shift node under the same name, so every consumer is unchanged.
    """
    if norm is None:
        return graph
    mean, std = norm.arrays(graph.input_shape)
    old = graph.by_name[graph.input_name]
    scale = torch.as_tensor(1.0 / std, dtype=torch.float64)
    shift = torch.as_tensor(-mean / std, dtype=torch.float64)
    raw = Node(RAW_INPUT, "input", (), old.shape, source="raw pixels (certify)")
    normalise = Node(old.name, "scale_shift", (RAW_INPUT,), old.shape, params={"scale": scale, "shift": shift},
                     source=f"normalisation mean={list(norm.mean)} std={list(norm.std)} (certify)")
    nodes = (raw, normalise) + tuple(n for n in graph.nodes if n.name != old.name)
    dtype = next((p.dtype for n in graph.nodes for p in n.params.values() if p.is_floating_point()), torch.float32)
    return replace(graph, nodes=nodes, input_name=RAW_INPUT).to(_device_of(graph), dtype)


def _device_of(graph: Graph) -> torch.device:
    return next((p.device for n in graph.nodes for p in n.params.values()), torch.device("cpu"))


def eps_box(x: np.ndarray, eps: float, clip: Optional[tuple[float, float]], dtype: torch.dtype,
            device: Any) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """The L-inf box [x - eps, x + eps] (intersected with clip) for flat samples x (B, n).

    Returns the box as tensors in `dtype`, rounded outwards where the cast rounds inwards, and the exact
    float64 box (what a counterexample must lie in).
    """
    lo, hi = x - eps, x + eps
    if clip is not None:
        lo, hi = np.clip(lo, clip[0], clip[1]), np.clip(hi, clip[0], clip[1])
        hi = np.maximum(hi, lo)  # a sample outside the clip range: the box collapses onto the range's edge
    return _outward(lo, dtype, device, -1), _outward(hi, dtype, device, 1), lo, hi


def into_ball(x: np.ndarray, centre: np.ndarray, eps: float, p: float, lo: np.ndarray,
              hi: np.ndarray) -> Optional[np.ndarray]:
    """A float32-representable point (as float64) of the exact ball ||x - centre||_p <= eps within [lo, hi],
    found by pulling x towards the centre as far as rounding needs; None when none is found. The ball the
    attack searched is held in float32 and slightly larger than the exact one, so its points may lie just
    outside."""
    d = x - centre
    for shrink in (1.0, 1 - 1e-6, 1 - 1e-5, 1 - 1e-4):
        dist = float(np.linalg.norm(d, ord=p))
        scale = shrink * min(1.0, eps / dist) if dist > 0 else 1.0
        y = np.clip((centre + scale * d).astype(np.float32).astype(np.float64), lo, hi)
        exact = np.array_equal(y.astype(np.float32).astype(np.float64), y)  # the clip kept float32 values
        if exact and float(np.linalg.norm(y - centre, ord=p)) <= eps:
            return y
    return None


def _outward(v: np.ndarray, dtype: torch.dtype, device: Any, direction: int) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=dtype)
    back = t.double().numpy()
    inward = back > v if direction < 0 else back < v
    if inward.any():
        towards = torch.full_like(t, -np.inf if direction < 0 else np.inf)
        t = torch.where(torch.as_tensor(inward), torch.nextafter(t, towards), t)
    return t.to(device)


def margin_matrix(labels: Sequence[int], n_outputs: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """C (B, n_outputs - 1, n_outputs) with rows e_y - e_j for every j != y: C·f > 0 row-wise proves class y."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    eye = torch.eye(n_outputs, dtype=dtype)
    others = torch.stack([torch.cat([torch.arange(0, int(y)), torch.arange(int(y) + 1, n_outputs)])
                          for y in labels]) if len(labels) else torch.zeros((0, n_outputs - 1), dtype=torch.long)
    C = eye[labels].unsqueeze(1) - eye[others]
    return C.to(device)


@dataclass
class RawRunner:
    """onnxruntime on the original file, fed raw samples normalised in float64 as the graph does."""

    path: str
    onnx_input_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    norm: Optional[Normalisation]

    @cached_property
    def _ort(self) -> Any:
        from verifier.attack.replay import OrtRunner

        return OrtRunner(self.path, self.onnx_input_shape)

    def __call__(self, x_raw: np.ndarray) -> np.ndarray:
        """Outputs (n_outputs,) float64 for one flat raw sample."""
        x = np.asarray(x_raw, dtype=np.float64).reshape(1, -1)
        if self.norm is not None:
            x = self.norm.apply(x, self.input_shape)
        return self._ort(x.reshape(-1))


@dataclass(frozen=True)
class CertifyProblem(Problem):
    """A Problem for `verifier.api`'s solver whose replays go through the normalisation first."""

    raw_runner: Any = None

    @property
    def runner(self) -> Any:  # type: ignore[override]
        return self.raw_runner


@dataclass(frozen=True)
class Network:
    """What the cascade needs of the model: the normalised graph on the device, and the replay runner."""

    model: Any  # verifier.model.loader.Model
    graph: Graph  # raw pixels in, with the normalisation node, on `device` in `dtype`
    runner: RawRunner
    device: str
    dtype: torch.dtype

    @property
    def n_inputs(self) -> int:
        return self.graph.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.graph.n_outputs

    @cached_property
    def _graph64(self) -> Graph:
        return self.graph.to(self.device, torch.float64)

    def graph64(self) -> Graph:
        """The graph in float64 (made once), for rechecking thin proofs."""
        return self._graph64

    def problem(self, spec: Any) -> CertifyProblem:
        """A `verifier.api.Problem` for one sample's spec on this network."""
        return CertifyProblem(self.model, spec, self.graph, self.device, self.dtype, raw_runner=self.runner)

    def logits(self, x: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Outputs (N, n_outputs) of the graph on raw flat samples, in float64."""
        out = []
        with torch.no_grad():
            for s in range(0, len(x), batch):
                xt = torch.as_tensor(x[s:s + batch], dtype=self.dtype, device=self.device)
                out.append(self.graph.forward(xt).reshape(len(xt), -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_outputs))


def load_network(path: str, norm: Optional[Normalisation], device: str, dtype: torch.dtype = torch.float32,
                 cache: bool = True) -> Network:
    """Load the ONNX model (converted once, then cached unless cache=False) and put the normalisation in
    front of its graph."""
    from verifier.api import resolve_device
    from verifier.model.loader import load_model

    model = load_model(path, check=False, cache=cache)
    if norm is not None:
        norm.arrays(model.graph.input_shape)  # a mean/std that does not fit the input fails here
    device = resolve_device(device)
    graph = with_normalisation(model.graph, norm).to(device, dtype)
    runner = RawRunner(str(model.path), tuple(model.onnx_input_shape), model.graph.input_shape, norm)
    return Network(model, graph, runner, device, dtype)


def check_against_onnxruntime(net: Network, x_raw: np.ndarray) -> None:
    """Compare the converted graph with onnxruntime on the box the (normalised) samples span: a silent
    conversion error would make every certificate about another network."""
    from verifier.model.check import verify_equivalence

    if not len(x_raw):
        return
    seen = x_raw if net.runner.norm is None else net.runner.norm.apply(x_raw, net.runner.input_shape)
    verify_equivalence(net.model, lower=seen.min(axis=0), upper=seen.max(axis=0))
