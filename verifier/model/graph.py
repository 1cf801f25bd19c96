"""The package's own small typed graph: what every bound interpreter walks.

Conventions (every interpreter relies on them):
- Nodes are in topological order; `inputs` name earlier nodes. Exactly one node has op "input".
- `shape` is the per-sample output shape, without the batch dimension. Every tensor that flows
  through an interpreter carries a leading batch dimension B (B subproblems / samples / boxes).
- `params` holds constant tensors (weights), `attrs` plain Python attributes. Nodes are immutable;
  interpreters never store anything on them.

Canonical ops (the registry in `verifier.bounds.ops` gives each its semantics):
- "input":       the network input.
- "linear":      y = x @ W.T + b; params W (m, n), b (m,); input shape (n,), output (m,).
- "relu":        y = max(x, 0).
- "reshape":     attrs["shape"] = per-sample output shape (row-major, as torch.reshape).
- "scale_shift": y = x * scale + shift, elementwise; params scale, shift broadcastable to the
                 per-sample shape (absorbs Sub/Div/Mul/Add/Neg by constants).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import torch


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    params: Mapping[str, torch.Tensor] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # the ONNX node(s) this came from, for error messages


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    input_name: str
    output_name: str
    onnx_input_shape: tuple[int, ...] = ()  # full ONNX input shape incl. batch dim, for onnxruntime

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("duplicate node names in graph")

    @property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.by_name[self.input_name].shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.by_name[self.output_name].shape

    @property
    def n_inputs(self) -> int:
        return _numel(self.input_shape)

    @property
    def n_outputs(self) -> int:
        return _numel(self.output_shape)

    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                out[i].append(n.name)
        return out

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Graph":
        """A copy with every parameter moved to `device` (and cast to `dtype` if given)."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if dtype is not None and t.is_floating_point() else t.dtype)

        nodes = tuple(replace(n, params={k: move(v) for k, v in n.params.items()}) for n in self.nodes)
        return replace(self, nodes=nodes)

    def forward(self, x: torch.Tensor, keep: bool = False) -> torch.Tensor | dict[str, torch.Tensor]:
        """Evaluate on a batch x of shape (B, *input_shape); with keep=True return every node's value."""
        from verifier.bounds.ops import OPS

        values: dict[str, torch.Tensor] = {}
        for n in self.nodes:
            if n.op == "input":
                values[n.name] = x.reshape((x.shape[0],) + n.shape)
            else:
                values[n.name] = OPS[n.op].forward(n, *[values[i] for i in n.inputs])
        return values if keep else values[self.output_name]


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out
