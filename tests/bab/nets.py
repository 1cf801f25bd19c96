"""Tiny ReLU networks (float64) for branch-and-bound tests, with an exact oracle, and writers for
them as ONNX (Gemm + Relu) and VNN-LIB files.

The oracle computes min over a box of g(x) = max_i (C_i·f(x) + d_i) exactly (up to float64 rounding):
it enumerates the activation patterns that occur in the box depth first (pruning empty regions), and on
each pattern's closed region, where f is affine, solves the LP "min t s.t. C·f(x) + d <= t" by vertex
enumeration (the inputs have at most 3 dims, so every LP has at most 4 variables). scipy is not a
dependency, and vertex enumeration needs no solver to be trusted.

On the closed region {z_j >= 0 for active j, z_j <= 0 for inactive j} the pattern's affine map equals f
(relu is continuous), so a region that is feasible only within the tolerance still gives a value of f
near its boundary: the oracle also returns its argmin, and tests evaluate f there themselves.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from verifier.model.graph import Graph, Node

DTYPE = torch.float64
FEAS_TOL = 1e-9


@dataclass(frozen=True)
class Net:
    """y = W_L relu(... relu(W_1 x + b_1) ...) + b_L, as float64 numpy layers."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    @property
    def n_in(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def n_out(self) -> int:
        return self.layers[-1][0].shape[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """f on a batch (N, n_in) or one point (n_in,), in float64."""
        a = np.asarray(x, dtype=np.float64)
        for i, (W, b) in enumerate(self.layers):
            a = a @ W.T + b
            if i < len(self.layers) - 1:
                a = np.maximum(a, 0.0)
        return a

    def graph(self, dtype: torch.dtype = DTYPE) -> Graph:
        nodes = [Node("x", "input", (), (self.n_in,))]
        prev = "x"
        for i, (W, b) in enumerate(self.layers):
            name = f"fc{i}"
            nodes.append(Node(name, "linear", (prev,), (W.shape[0],),
                              {"W": torch.as_tensor(W, dtype=dtype), "b": torch.as_tensor(b, dtype=dtype)}))
            prev = name
            if i < len(self.layers) - 1:
                nodes.append(Node(f"relu{i}", "relu", (prev,), (W.shape[0],)))
                prev = f"relu{i}"
        return Graph(tuple(nodes), "x", prev)


def random_net(rng: np.random.Generator, n_in: int, widths: list[int], n_out: int,
               bias_scale: float = 0.5) -> Net:
    sizes = [n_in] + list(widths) + [n_out]
    layers = tuple((rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(size=o) * bias_scale)
                   for i, o in zip(sizes[:-1], sizes[1:]))
    return Net(layers)


def clause_value(net: Net, C: np.ndarray, d: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g(x) = max_i (C_i·f(x) + d_i), for a batch (N, n) -> (N,) or one point -> scalar."""
    y = net(x)
    return (y @ C.T + d).max(axis=-1)


@lru_cache(maxsize=None)
def _combos(m: int, k: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(m), k)), dtype=np.int64).reshape(-1, k)


def _vertices(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All vertices of {z: A z <= b} (feasible within FEAS_TOL), as rows; empty if none."""
    m, D = A.shape
    if m < D:
        return np.zeros((0, D))
    idx = _combos(m, D)
    As, bs = A[idx], b[idx]
    det = np.linalg.det(As)
    scale = np.prod(np.linalg.norm(As, axis=2), axis=1)
    ok = np.abs(det) > 1e-10 * np.maximum(scale, 1e-300)
    if not ok.any():
        return np.zeros((0, D))
    Z = np.linalg.solve(As[ok], bs[ok][..., None])[..., 0]
    slack = Z @ A.T - b
    tol = FEAS_TOL * (1.0 + np.abs(b).max() + np.abs(Z).max(axis=1, keepdims=True))
    return Z[(slack <= tol).all(axis=1)]


def _box_constraints(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = lo.shape[0]
    return np.concatenate([np.eye(n), -np.eye(n)]), np.concatenate([hi, -lo])


def exact_min(net: Net, lo: np.ndarray, hi: np.ndarray, C: np.ndarray, d: np.ndarray) -> tuple[float, np.ndarray]:
    """(min over [lo, hi] of g, an argmin). The box must have positive width in every dim."""
    assert np.all(hi > lo)
    n = net.n_in
    A_box, b_box = _box_constraints(lo, hi)
    best = (np.inf, (lo + hi) / 2)

    def leaf(A: np.ndarray, b: np.ndarray, M: np.ndarray, c: np.ndarray) -> None:
        nonlocal best
        # variables (x, t): C M x + C c + d <= t  <=>  [C M, -1] (x, t) <= -(C c + d)
        CM, Cc = C @ M, C @ c + d
        rows_A = np.concatenate([CM, -np.ones((C.shape[0], 1))], axis=1)
        A_full = np.concatenate([np.concatenate([A, np.zeros((A.shape[0], 1))], axis=1), rows_A])
        b_full = np.concatenate([b, -Cc])
        V = _vertices(A_full, b_full)
        if len(V):
            i = int(np.argmin(V[:, -1]))
            if V[i, -1] < best[0]:
                best = (float(V[i, -1]), np.clip(V[i, :n], lo, hi))

    def walk(layer: int, j: int, A: np.ndarray, b: np.ndarray, P: np.ndarray, q: np.ndarray,
             act: np.ndarray) -> None:
        """P x + q: the pre-activations of hidden layer `layer` on the region A x <= b (where the earlier
        layers' pattern is fixed); act: the pattern chosen so far for its first j neurons."""
        W_next = net.layers[layer][0]
        if j == W_next.shape[0]:
            M2, c2 = P * act[:, None], q * act
            if layer + 1 == len(net.layers) - 1:
                W, bb = net.layers[-1]
                leaf(A, b, W @ M2, W @ c2 + bb)
            else:
                W, bb = net.layers[layer + 1]
                walk(layer + 1, 0, A, b, W @ M2, W @ c2 + bb, np.zeros(W.shape[0]))
            return
        for active in (1.0, 0.0):
            # active: P_j x + q_j >= 0  <=>  -P_j x <= q_j; inactive: P_j x <= -q_j
            row, rhs = (-P[j], q[j]) if active else (P[j], -q[j])
            A2, b2 = np.concatenate([A, row[None]]), np.concatenate([b, [rhs]])
            if len(_vertices(A2, b2)):
                act2 = act.copy()
                act2[j] = active
                walk(layer, j + 1, A2, b2, P, q, act2)

    if len(net.layers) == 1:
        W, bb = net.layers[0]
        leaf(A_box, b_box, W, bb)
    else:
        W, bb = net.layers[0]
        walk(0, 0, A_box, b_box, W, bb, np.zeros(W.shape[0]))
    return best


def local_min(net: Net, lo: np.ndarray, hi: np.ndarray, C: np.ndarray, d: np.ndarray,
              seed: int = 0, starts: int = 64, steps: int = 200) -> tuple[float, np.ndarray]:
    """Projected sign-gradient descent on g from a grid and random starts (an upper bound on the min)."""
    graph = net.graph()
    gen = torch.Generator().manual_seed(seed)
    lo_t, hi_t = torch.as_tensor(lo), torch.as_tensor(hi)
    Ct, dt = torch.as_tensor(C), torch.as_tensor(d)
    x = lo_t + torch.rand((starts, lo.shape[0]), generator=gen, dtype=DTYPE) * (hi_t - lo_t)
    step = (hi_t - lo_t) / 8
    best_v, best_x = np.inf, (lo + hi) / 2
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        v = (graph.forward(x) @ Ct.T + dt).amax(dim=1)
        i = int(v.detach().argmin())
        if float(v[i].detach()) < best_v:
            best_v, best_x = float(v[i].detach()), x[i].detach().numpy().copy()
        (grad,) = torch.autograd.grad(v.sum(), x)
        x = torch.minimum(torch.maximum(x - step * grad.sign(), lo_t), hi_t)
        step = step * 0.97
    return best_v, best_x


def write_onnx(net: Net, path: Path) -> Path:
    """Gemm (+ Relu between) layers, float32, opset 13, input [1, n] and output [1, m]."""
    nodes, inits, prev = [], [], "X"
    for i, (W, b) in enumerate(net.layers):
        inits += [numpy_helper.from_array(W.astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(b.astype(np.float32), f"B{i}")]
        out = "Y" if i == len(net.layers) - 1 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [out], transB=1, name=f"gemm{i}"))
        if out != "Y":
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"], name=f"relu{i}"))
            prev = f"r{i}"
    graph = helper.make_graph(nodes, "bump", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, net.n_in])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, net.n_out])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_vnnlib(path: Path, lo: np.ndarray, hi: np.ndarray, n_out: int, asserts: list[str]) -> Path:
    lines = [f"(declare-const X_{i} Real)" for i in range(len(lo))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, (a, b) in enumerate(zip(lo, hi)):
        lines += [f"(assert (>= X_{i} {float(a)!r}))", f"(assert (<= X_{i} {float(b)!r}))"]
    path.write_text("\n".join(lines + asserts) + "\n")
    return path


def split_at_random(search, b, doms, gen: torch.Generator):  # type: ignore[no-untyped-def]
    """Split every bounded domain of `doms` (bounds `b` from relu_split._bound) on a random neuron its bounds leave
    unstable, keeping domains with none out: (children, layer index per split, neuron per split, kept domains),
    or None when no domain has an unstable neuron. For tests that walk a ReLU-split tree down by hand."""
    from verifier.bab.relu_split import _children, _Domains

    layer, neuron, keep = [], [], []
    for i in range(len(doms)):
        options = [(li, j) for li, name in enumerate(search.layers)
                   for j in ((b.boxes[name][0][i].flatten() < 0) & (b.boxes[name][1][i].flatten() > 0))
                   .nonzero().flatten().tolist()]
        if options:
            li, j = options[int(torch.randint(len(options), (1,), generator=gen))]
            layer.append(li), neuron.append(j), keep.append(i)
    if not keep:
        return None
    idx = torch.tensor(keep)
    parents = _Domains({n: b.boxes[n][0][idx] for n in search.layers},
                       {n: b.boxes[n][1][idx] for n in search.layers},
                       {n: doms.sign[n][idx] for n in search.layers},
                       {n: t[idx] for n, t in b.alpha.items()}, {n: t[idx] for n, t in b.beta.items()},
                       doms.start[idx], doms.margin[idx])
    return _children(parents, torch.tensor(layer), torch.tensor(neuron), search.layers), layer, neuron, idx
