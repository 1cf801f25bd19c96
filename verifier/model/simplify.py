"""Graph -> Graph rewrites that make the network smaller without changing what it computes.

Fewer affine layers means fewer bound computations and tighter bounds (an input normalisation
merged into the first linear layer costs nothing). Every pass is a pure function; merged nodes keep
the ONNX names of everything they absorbed in `source`. Parameter arithmetic is done in float64
and cast back, so merging does not add float32 rounding on top of the network's own.

Constant folding happens during translation (`translate.py`): our IR has no constant op, so a
constant-only ONNX subgraph never reaches a Graph.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

import torch

from verifier.model.graph import Graph, Node

Pass = Callable[[Graph], Graph]


# ---- graph surgery helpers --------------------------------------------------------------------------

def _join(*sources: str) -> str:
    parts: list[str] = []
    for s in sources:
        parts += [p for p in s.split(", ") if p and p not in parts]
    return ", ".join(parts)


def _rewire(g: Graph, changed: dict[str, Node], bypass: Optional[dict[str, str]] = None) -> Graph:
    """Replace nodes by name, route readers of each bypassed node to its input, then drop dead nodes."""
    bypass = bypass or {}

    def resolve(name: str) -> str:
        while name in bypass:
            name = bypass[name]
        return name

    nodes = [changed.get(n.name, n) for n in g.nodes if n.name not in bypass]
    nodes = [replace(n, inputs=tuple(resolve(i) for i in n.inputs)) for n in nodes]
    return _drop_dead(replace(g, nodes=tuple(nodes), output_name=resolve(g.output_name)))


def _drop_dead(g: Graph) -> Graph:
    """Nodes that nothing reads and that are not the output are gone (the input always stays)."""
    live = {g.output_name, g.input_name}
    for n in reversed(g.nodes):
        if n.name in live:
            live.update(n.inputs)
    if len(live) == len(g.nodes):
        return g
    return replace(g, nodes=tuple(n for n in g.nodes if n.name in live))


def _single_use(g: Graph, name: str, consumers: dict[str, list[str]]) -> bool:
    return len(consumers[name]) == 1 and name != g.output_name


def _producer_through_reshapes(g: Graph, node: Node, consumers: dict[str, list[str]]) -> Optional[Node]:
    """The node feeding `node` through a chain of reshapes, each read only by the next one; None if shared."""
    by_name = g.by_name
    cur = by_name[node.inputs[0]]
    while True:
        if not _single_use(g, cur.name, consumers):
            return None
        if cur.op != "reshape":
            return cur
        cur = by_name[cur.inputs[0]]


def _flat(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A scale/shift parameter as a float64 vector over the row-major flattening of `shape`."""
    return torch.broadcast_to(t.to(torch.float64), shape).reshape(-1)


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64)


def _linear(node: Node, w: torch.Tensor, b: torch.Tensor, source: str) -> Node:
    """`node` with new float64-computed parameters cast back to its dtype."""
    dtype = node.params["W"].dtype
    return replace(node, params={"W": w.to(dtype).contiguous(), "b": b.to(dtype).contiguous()}, source=source)


def _first_rewrite(g: Graph, rewrite: Callable[[Graph, Node, dict[str, list[str]]], Optional[Graph]]) -> Graph:
    """Apply `rewrite` at the first node where it matches, until it matches nowhere."""
    changed = True
    while changed:
        changed = False
        consumers = g.consumers()
        for node in g.nodes:
            new = rewrite(g, node, consumers)
            if new is not None:
                g, changed = new, True
                break
    return g


# ---- passes -------------------------------------------------------------------------------------------

def _is_identity(g: Graph, n: Node) -> bool:
    if n.op == "reshape":
        return tuple(n.attrs["shape"]) == g.by_name[n.inputs[0]].shape
    if n.op == "scale_shift":
        return bool((n.params["scale"] == 1).all() and (n.params["shift"] == 0).all())
    if n.op == "linear":
        w, b = n.params["W"], n.params["b"]
        return w.shape[0] == w.shape[1] and torch.equal(w, torch.eye(w.shape[0], dtype=w.dtype)) and not b.any()
    return False


def drop_identities(g: Graph) -> Graph:
    """Remove reshapes to the same shape, scale_shift by (1, 0) and identity linear layers."""
    bypass = {n.name: n.inputs[0] for n in g.nodes if _is_identity(g, n)}
    return _rewire(g, {}, bypass) if bypass else g


def merge_reshapes(g: Graph) -> Graph:
    """reshape(reshape(x)) is one reshape: both are row-major, so only the last target shape matters."""
    def rewrite(g: Graph, n: Node, consumers: dict[str, list[str]]) -> Optional[Graph]:
        src = g.by_name[n.inputs[0]] if n.inputs else None
        if n.op != "reshape" or src is None or src.op != "reshape":
            return None
        return _rewire(g, {n.name: replace(n, inputs=src.inputs, source=_join(src.source, n.source))})
    return _first_rewrite(g, rewrite)


def _carry(t: torch.Tensor, from_shape: tuple[int, ...], to_shape: tuple[int, ...]) -> torch.Tensor:
    """A parameter broadcast over `from_shape`, re-expressed over the reshaped `to_shape` (float64)."""
    t = _f64(t)
    if t.numel() == 1:
        return t.reshape(())
    if from_shape == to_shape:
        return t
    return torch.broadcast_to(t, from_shape).reshape(to_shape)


def merge_scale_shifts(g: Graph) -> Graph:
    """scale_shift -> reshape* -> scale_shift is one: x * (s1 s2) + (t1 s2 + t2), placed after the reshapes."""
    def rewrite(g: Graph, n: Node, consumers: dict[str, list[str]]) -> Optional[Graph]:
        if n.op != "scale_shift":
            return None
        src = _producer_through_reshapes(g, n, consumers)
        if src is None or src.op != "scale_shift":
            return None
        s1, t1 = (_carry(src.params[k], src.shape, n.shape) for k in ("scale", "shift"))
        s2, t2 = _f64(n.params["scale"]), _f64(n.params["shift"])
        dtype = n.params["scale"].dtype
        merged = replace(n, source=_join(src.source, n.source),
                         params={"scale": (s1 * s2).to(dtype), "shift": (t1 * s2 + t2).to(dtype)})
        return _rewire(g, {n.name: merged}, {src.name: src.inputs[0]})
    return _first_rewrite(g, rewrite)


def merge_scale_shift_into_linear(g: Graph) -> Graph:
    """scale_shift -> reshape* -> linear: W' = W diag(s), b' = b + W t (absorbs input normalisation)."""
    def rewrite(g: Graph, n: Node, consumers: dict[str, list[str]]) -> Optional[Graph]:
        if n.op != "linear":
            return None
        src = _producer_through_reshapes(g, n, consumers)
        if src is None or src.op != "scale_shift":
            return None
        s, t = _flat(src.params["scale"], src.shape), _flat(src.params["shift"], src.shape)
        w, b = _f64(n.params["W"]), _f64(n.params["b"])
        new = _linear(n, w * s[None, :], b + w @ t, _join(src.source, n.source))
        return _rewire(g, {n.name: new}, {src.name: src.inputs[0]})
    return _first_rewrite(g, rewrite)


def merge_linear_into_scale_shift(g: Graph) -> Graph:
    """linear -> reshape* -> scale_shift: W' = diag(s) W, b' = s b + t (the bias Add after a MatMul)."""
    def rewrite(g: Graph, n: Node, consumers: dict[str, list[str]]) -> Optional[Graph]:
        if n.op != "scale_shift":
            return None
        src = _producer_through_reshapes(g, n, consumers)
        if src is None or src.op != "linear":
            return None
        s, t = _flat(n.params["scale"], n.shape), _flat(n.params["shift"], n.shape)
        w, b = _f64(src.params["W"]), _f64(src.params["b"])
        new = _linear(src, s[:, None] * w, s * b + t, _join(src.source, n.source))
        return _rewire(g, {src.name: new}, {n.name: n.inputs[0]})
    return _first_rewrite(g, rewrite)


def merge_linears(g: Graph) -> Graph:
    """linear -> reshape* -> linear with nothing nonlinear between: W = W2 W1, b = W2 b1 + b2."""
    def rewrite(g: Graph, n: Node, consumers: dict[str, list[str]]) -> Optional[Graph]:
        if n.op != "linear":
            return None
        src = _producer_through_reshapes(g, n, consumers)
        if src is None or src.op != "linear":
            return None
        w1, b1, w2, b2 = (_f64(src.params["W"]), _f64(src.params["b"]), _f64(n.params["W"]), _f64(n.params["b"]))
        new = replace(_linear(n, w2 @ w1, w2 @ b1 + b2, _join(src.source, n.source)), inputs=src.inputs)
        return _rewire(g, {n.name: new})
    return _first_rewrite(g, rewrite)


def _per_channel(t: torch.Tensor, shape: tuple[int, ...]) -> Optional[torch.Tensor]:
    """A scale/shift parameter as a float64 vector over the channels of a (C, H, W) shape, or None when it
    varies within a channel."""
    full = torch.broadcast_to(t.to(torch.float64), shape)
    first = full[:, :1, :1]
    return first.reshape(-1) if torch.equal(full, first.expand_as(full)) else None


def merge_conv_into_scale_shift(g: Graph) -> Graph:
    """conv -> per-channel scale_shift (a batch norm): W'[c] = s[c] W[c], b' = s b + t."""
    def rewrite(g: Graph, n: Node, consumers: dict[str, list[str]]) -> Optional[Graph]:
        if n.op != "scale_shift":
            return None
        src = g.by_name[n.inputs[0]]
        if src.op != "conv" or not _single_use(g, src.name, consumers):
            return None
        s, t = _per_channel(n.params["scale"], n.shape), _per_channel(n.params["shift"], n.shape)
        if s is None or t is None:
            return None
        w, b = _f64(src.params["W"]), _f64(src.params["b"])
        dtype = src.params["W"].dtype
        params = {"W": (w * s.view(-1, 1, 1, 1)).to(dtype).contiguous(), "b": (s * b + t).to(dtype).contiguous()}
        new = replace(src, params=params, source=_join(src.source, n.source))
        return _rewire(g, {src.name: new}, {n.name: n.inputs[0]})
    return _first_rewrite(g, rewrite)


PASSES: tuple[Pass, ...] = (
    drop_identities,
    merge_reshapes,
    merge_scale_shifts,
    merge_scale_shift_into_linear,
    merge_linear_into_scale_shift,
    merge_linears,
    merge_conv_into_scale_shift,
)


def simplify(g: Graph, passes: tuple[Pass, ...] = PASSES) -> Graph:
    """Run the passes until none changes the graph (each pass returns its input object when it does nothing)."""
    while True:
        before = g
        for p in passes:
            g = p(g)
        if g is before:
            return g
