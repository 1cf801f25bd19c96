"""Hypothesis strategies for random small networks, input boxes and objectives (all float64)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from hypothesis import settings
from hypothesis import strategies as st

from verifier.model.graph import Graph, Node

DTYPE = torch.float64

# Bounding plus PGD on a random network takes variable time; the example count comes from the profile.
no_deadline = settings(deadline=None)


@dataclass(frozen=True)
class Case:
    """One bounding problem: a graph, a batch of boxes (B, *input_shape) and objective rows C."""

    graph: Graph
    lower: torch.Tensor
    upper: torch.Tensor
    C: torch.Tensor  # (k, n_outputs) or (B, k, n_outputs)
    seed: int

    @property
    def batch(self) -> int:
        return self.lower.shape[0]


@dataclass
class GraphBuilder:
    """Appends uniquely named nodes and returns their names, so tests read like the network."""

    gen: torch.Generator
    nodes: list[Node] = field(default_factory=list)

    def add(self, op: str, inputs: tuple[str, ...], shape: tuple[int, ...],
            params: Optional[dict[str, torch.Tensor]] = None, attrs: Optional[dict] = None) -> str:
        name = f"{op}{len(self.nodes)}"
        self.nodes.append(Node(name, op, inputs, shape, params or {}, attrs or {}))
        return name

    def shape(self, name: str) -> tuple[int, ...]:
        return next(n.shape for n in self.nodes if n.name == name)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen, dtype=DTYPE)

    def linear(self, x: str, width: int, bias_scale: float = 1.0) -> str:
        n = self.shape(x)[0]
        W = self.randn(width, n) / math.sqrt(n)
        return self.add("linear", (x,), (width,), {"W": W, "b": self.randn(width) * bias_scale})

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self.add("reshape", (x,), shape, attrs={"shape": shape})

    def scale_shift(self, x: str, param_shape: tuple[int, ...]) -> str:
        scale = self.randn(*param_shape) * 1.5
        scale = torch.where(torch.rand(param_shape, generator=self.gen, dtype=DTYPE) < 0.15, 0.0, scale)
        params = {"scale": scale, "shift": self.randn(*param_shape)}
        return self.add("scale_shift", (x,), self.shape(x), params)

    def relu(self, x: str) -> str:
        return self.add("relu", (x,), self.shape(x))

    def graph(self, output: str) -> Graph:
        return Graph(tuple(self.nodes), self.nodes[0].name, output)


def _factor_shapes(n: int) -> list[tuple[int, int]]:
    return [(p, n // p) for p in range(1, n + 1) if n % p == 0]


def _broadcast_shapes(shape: tuple[int, int]) -> list[tuple[int, ...]]:
    p, q = shape
    return [(), (q,), (p, 1), (p, q)]


@st.composite
def mlp_graphs(draw: st.DrawFn, with_relu: bool = True, max_depth: int = 4) -> Graph:
    """Random MLPs: input (optionally 2-D, then flattened), optional input scale_shift, 1-4 linear
    layers of width 1-12, relus (sometimes applied in a reshaped 2-D view after a broadcasting
    scale_shift), and sometimes a relu or scale_shift at the output."""
    b = GraphBuilder(torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1))))
    n_in = draw(st.integers(1, 6))
    in_shape = draw(st.sampled_from([(n_in,)] + _factor_shapes(n_in)))
    x = b.add("input", (), in_shape)
    if len(in_shape) > 1:
        x = b.reshape(x, (n_in,))
    if draw(st.booleans()):
        x = b.scale_shift(x, (n_in,))
    bias_scale = draw(st.sampled_from([0.0, 0.5, 3.0]))  # large biases make stable relus common
    depth = draw(st.integers(1, max_depth))
    for i in range(depth):
        last = i == depth - 1
        x = b.linear(x, draw(st.integers(1, 5)) if last else draw(st.integers(1, 12)), bias_scale)
        if with_relu and not last:
            x = _activation(draw, b, x)
    end = draw(st.sampled_from(["none", "none", "scale_shift"] + (["relu"] if with_relu else [])))
    if end == "scale_shift":
        x = b.scale_shift(x, b.shape(x))
    elif end == "relu":
        x = b.relu(x)
    return b.graph(x)


def _activation(draw: st.DrawFn, b: GraphBuilder, x: str) -> str:
    """A relu, directly or inside a reshaped 2-D view with a broadcasting scale_shift."""
    if not draw(st.booleans()):
        return b.relu(x)
    flat = b.shape(x)
    view = draw(st.sampled_from(_factor_shapes(flat[0])))
    y = b.reshape(x, view)
    if draw(st.booleans()):
        y = b.scale_shift(y, draw(st.sampled_from(_broadcast_shapes(view))))
    return b.reshape(b.relu(y), flat)


@st.composite
def cases(draw: st.DrawFn, with_relu: bool = True, max_depth: int = 4, min_batch: int = 1) -> Case:
    """A random graph with a batch of 1-3 random boxes (some dims or whole boxes of zero width,
    radii from tiny to huge) and 1-4 random objective rows (shared or per batch element)."""
    graph = draw(mlp_graphs(with_relu=with_relu, max_depth=max_depth))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    batch = draw(st.integers(min_batch, 3))
    radius_scale = draw(st.sampled_from([0.0, 0.01, 0.3, 2.0]))
    zero_prob = draw(st.sampled_from([0.0, 0.3]))
    shape = (batch,) + graph.input_shape
    center = torch.rand(shape, generator=gen, dtype=DTYPE) * 2 - 1
    radius = torch.rand(shape, generator=gen, dtype=DTYPE) * radius_scale
    radius = torch.where(torch.rand(shape, generator=gen, dtype=DTYPE) < zero_prob, 0.0, radius)
    k = draw(st.integers(1, 4))
    c_shape = (batch, k, graph.n_outputs) if draw(st.booleans()) else (k, graph.n_outputs)
    C = torch.randn(c_shape, generator=gen, dtype=DTYPE)
    return Case(graph, center - radius, center + radius, C, seed)


LEAKY_ALPHAS = (0.0, 0.01, 0.3, 1.0, 2.5)  # 0 is relu, 1 the identity, above 1 a concave leaky_relu


@st.composite
def activation_cases(draw: st.DrawFn, ops: tuple[str, ...] = ("sigmoid", "tanh", "leaky_relu"),
                     max_depth: int = 3) -> Case:
    """Like `cases`, with the same boxes and objectives, on random MLPs whose hidden layers (and
    sometimes the output) apply one of `ops` (leaky_relu with a slope from LEAKY_ALPHAS). Weight
    gains up to 4 and large biases push sigmoid/tanh into saturation; small ones keep them straddling
    their inflection point."""
    base = draw(cases(with_relu=False, max_depth=1))  # only its boxes, objectives and seed are used
    b = GraphBuilder(torch.Generator().manual_seed(base.seed ^ 0x5EED))
    in_shape = base.graph.input_shape
    x = b.add("input", (), in_shape)
    if len(in_shape) > 1:
        x = b.reshape(x, (math.prod(in_shape),))
    gain = draw(st.sampled_from([0.5, 1.0, 4.0]))
    bias_scale = draw(st.sampled_from([0.0, 0.5, 3.0]))
    depth = draw(st.integers(1, max_depth))
    for i in range(depth + 1):
        last = i == depth
        n, width = b.shape(x)[0], base.graph.n_outputs if last else draw(st.integers(1, 10))
        params = {"W": b.randn(width, n) * (gain / math.sqrt(n)), "b": b.randn(width) * bias_scale}
        x = b.add("linear", (x,), (width,), params)
        if not last or draw(st.booleans()):
            op = draw(st.sampled_from(ops))
            attrs = {"alpha": draw(st.sampled_from(LEAKY_ALPHAS))} if op == "leaky_relu" else None
            x = b.add(op, (x,), (width,), attrs=attrs)
    return Case(b.graph(x), base.lower, base.upper, base.C, base.seed)
