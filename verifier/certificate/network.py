"""The checker's own reading of an ONNX file: a chain of dense affine maps and relus, in float64.

Independent of the verifier's loader (onnx2torch, graph simplification): the checker walks the
ONNX graph itself with `onnx` and numpy, so a bug in the verifier's translation cannot hide in a
proof. Only feed-forward chains are read (one computed tensor flowing through every node), with the
ops of fully connected ReLU networks; anything else is refused naming the op.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np


class UnsupportedModel(Exception):
    """The model is outside what the checker reads (bad input for check-cert: exit 3)."""


@dataclass(frozen=True)
class Affine:
    """y = W x + b on flat vectors; W (n_out, n_in) float64, b (n_out,) float64."""

    W: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class Divide:
    """y = x / c elementwise (c (n,) float64, nonzero): kept as a division, which 1/c would round."""

    c: np.ndarray


@dataclass(frozen=True)
class Relu:
    width: int


Layer = Union[Affine, Divide, Relu]


@dataclass(frozen=True)
class Chain:
    layers: tuple[Layer, ...]
    n_inputs: int
    n_outputs: int

    @property
    def relu_widths(self) -> list[int]:
        return [layer.width for layer in self.layers if isinstance(layer, Relu)]


def load_chain(path: str) -> Chain:
    """Read `path` into a Chain; UnsupportedModel names the first op or structure it cannot take."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(path)
    except Exception as err:  # onnx raises DecodeError, OSError, ...
        raise UnsupportedModel(f"{path}: not a readable ONNX file ({type(err).__name__})") from None
    graph = model.graph
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedModel(f"{path}: one input and one output tensor needed")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    shape = tuple(max(1, v) for v in dims)  # symbolic (batch) dims count as 1
    current, layers = inputs[0].name, []
    for node in graph.node:
        op = node.op_type
        if op == "Constant":
            consts[node.output[0]] = _constant(node).astype(np.float64)
            continue
        var = [name for name in node.input if name and name not in consts]
        if var != [current]:
            raise UnsupportedModel(f"{path}: node {node.name or op} ({op}) is not on a single chain")
        shape, new = _layer(path, node, shape, consts, current)
        layers.extend(new)
        current = node.output[0]
    if current != graph.output[0].name:
        raise UnsupportedModel(f"{path}: the output is not the end of the chain")
    n_in = math.prod(max(1, v) for v in dims)
    return Chain(tuple(layers), n_in, math.prod(shape))


def _constant(node) -> np.ndarray:  # type: ignore[no-untyped-def]
    from onnx import numpy_helper

    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
    raise UnsupportedModel(f"Constant {node.name} without a tensor value")


def _attr(node, name: str, default):  # type: ignore[no-untyped-def]
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _layer(path: str, node, shape: tuple[int, ...], consts: dict[str, np.ndarray], current: str,
           ) -> tuple[tuple[int, ...], list[Layer]]:  # type: ignore[no-untyped-def]
    """The output shape and layers of one node acting on the chain's tensor (of `shape`)."""
    op, n = node.op_type, math.prod(shape)
    if op in ("Flatten", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Dropout"):
        if op == "Flatten":
            axis = _attr(node, "axis", 1)
            return (math.prod(shape[:axis]), math.prod(shape[axis:])), []
        return (1, n), []  # row-major element order is all the chain keeps
    if op == "Relu":
        return shape, [Relu(n)]
    if op in ("MatMul", "Gemm"):
        if math.prod(shape[:-1]) != 1:
            raise UnsupportedModel(f"{path}: node {node.name or op} ({op}) on a tensor of shape {list(shape)}")
        if node.input[0] != current:
            raise UnsupportedModel(f"{path}: node {node.name or op} ({op}) with the constant on the left")
        W = consts[node.input[1]]
        if op == "Gemm":
            if _attr(node, "transA", 0):
                raise UnsupportedModel(f"{path}: node {node.name or op} (Gemm with transA)")
            W = W.T if _attr(node, "transB", 0) else W
            W = W * float(_attr(node, "alpha", 1.0))
            b = consts[node.input[2]] * float(_attr(node, "beta", 1.0)) if len(node.input) > 2 and node.input[2] \
                else np.zeros(W.shape[1])
        else:
            b = np.zeros(W.shape[1])
        if W.ndim != 2 or W.shape[0] != shape[-1]:
            raise UnsupportedModel(f"{path}: node {node.name or op} ({op}): weight shape {list(W.shape)}")
        return (1, W.shape[1]), [Affine(np.ascontiguousarray(W.T), np.broadcast_to(b, (W.shape[1],)).reshape(-1).copy())]
    if op == "Div":
        if node.input[0] != current or node.input[1] not in consts:
            raise UnsupportedModel(f"{path}: node {node.name or op} (Div) by a computed tensor")
        c = consts[node.input[1]]
        c = np.broadcast_to(c, np.broadcast_shapes(c.shape, shape)).reshape(-1)
        if c.shape[0] != n or np.any(c == 0) or not np.all(np.isfinite(c)):
            raise UnsupportedModel(f"{path}: node {node.name or op} (Div) by zero or broadcasting the tensor")
        return shape, [Divide(c.astype(np.float64).copy())]
    if op in ("Add", "Sub", "Mul"):
        other = [name for name in node.input if name != current]
        if len(other) != 1:
            raise UnsupportedModel(f"{path}: node {node.name or op} ({op}) of two computed tensors")
        c = consts[other[0]]
        if np.broadcast_shapes(c.shape, shape) != tuple(shape) and math.prod(np.broadcast_shapes(c.shape, shape)) != n:
            raise UnsupportedModel(f"{path}: node {node.name or op} ({op}) broadcasts the chain's tensor")
        c = np.broadcast_to(c.reshape(c.shape), np.broadcast_shapes(c.shape, shape)).reshape(-1)
        eye = np.eye(n)
        if op == "Add":
            return shape, [Affine(eye, c.copy())]
        if op == "Mul":
            return shape, [Affine(np.diag(c), np.zeros(n))]
        if node.input[0] == current:  # x - c
            return shape, [Affine(eye, -c)]
        return shape, [Affine(-eye, c.copy())]  # c - x
    raise UnsupportedModel(f"{path}: unsupported op {op} (node {node.name or op})")
