"""Graph <-> plain dict of lists, strings, ints and tensors.

Plain data, not pickled classes, so `torch.load(..., weights_only=True)` can read it back safely and
a renamed class never breaks an old file. Tuples are stored as lists and restored as tuples.
"""
from __future__ import annotations

from typing import Any

import torch

from verifier.model.graph import Graph, Node


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _tuples(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v


def graph_to_dict(g: Graph) -> dict[str, Any]:
    nodes = [{
        "name": n.name, "op": n.op, "inputs": list(n.inputs), "shape": list(n.shape),
        "params": {k: t.detach().cpu().contiguous() for k, t in n.params.items()},
        "attrs": _plain(dict(n.attrs)), "source": n.source,
    } for n in g.nodes]
    return {"nodes": nodes, "input_name": g.input_name, "output_name": g.output_name,
            "onnx_input_shape": list(g.onnx_input_shape)}


def graph_from_dict(d: dict[str, Any]) -> Graph:
    """Inverse of graph_to_dict; raises KeyError/TypeError/ValueError on a malformed dict."""
    nodes = tuple(Node(
        name=str(n["name"]), op=str(n["op"]), inputs=tuple(n["inputs"]), shape=tuple(int(s) for s in n["shape"]),
        params={k: _tensor(t) for k, t in n["params"].items()}, attrs=_tuples(n["attrs"]), source=str(n["source"]),
    ) for n in d["nodes"])
    return Graph(nodes, str(d["input_name"]), str(d["output_name"]), tuple(int(s) for s in d["onnx_input_shape"]))


def _tensor(t: Any) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(t).__name__}")
    return t


def _fields(n: Node) -> tuple:
    return n.name, n.op, n.inputs, n.shape, dict(n.attrs), n.source


def graphs_equal(a: Graph, b: Graph) -> bool:
    """Structural equality with exact tensor comparison (Node's own == cannot compare tensors)."""
    if (a.input_name, a.output_name, a.onnx_input_shape, len(a.nodes)) != \
            (b.input_name, b.output_name, b.onnx_input_shape, len(b.nodes)):
        return False
    for x, y in zip(a.nodes, b.nodes):
        if _fields(x) != _fields(y):
            return False
        if x.params.keys() != y.params.keys():
            return False
        if not all(x.params[k].dtype == y.params[k].dtype and torch.equal(x.params[k], y.params[k]) for k in x.params):
            return False
    return True
