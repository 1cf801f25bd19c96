"""IBP, CROWN and alpha-CROWN on random small convolutional networks, written as ONNX and loaded through
the front end (so the translation of each op is under test too): convolutions with strides, padding
and groups, residual additions, batch norm, average and max pooling (a relu tree), concat, clip.
Random points, corners and PGD points of random boxes must lie inside every bound."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from onnx import helper

from tests.bounds.checks import assert_inside, attack_points, objective_values
from tests.bounds.graphs import no_deadline
from tests.model.onnx_builders import init, save
from verifier.bounds.alpha import AlphaConfig, alpha_crown
from verifier.bounds.crown import crown
from verifier.bounds.ibp import ibp, ibp_objective
from verifier.model.graph import Graph, Node
from verifier.model.loader import load_model

DTYPE = torch.float64
BLOCKS = ("conv", "conv_stride", "residual", "avgpool", "maxpool", "maxpool_pad", "batchnorm", "concat", "clip")


class _Net:
    """Appends ONNX nodes to a channels x size x size feature map, tracking its shape."""

    def __init__(self, rng: np.random.Generator, channels: int, size: int) -> None:
        self.rng, self.nodes, self.inits = rng, [], []
        self.x, self.c, self.s, self.k = "x", channels, size, 0

    def _name(self, what: str) -> str:
        self.k += 1
        return f"{what}{self.k}"

    def _const(self, *shape: int, positive: bool = False) -> str:
        name = self._name("w")
        value = self.rng.normal(size=shape).astype(np.float32)
        self.inits.append(init(name, np.abs(value) + 0.5 if positive else value))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, c_out: int, k: int = 3, stride: int = 1, pad: int = 1, groups: int = 1) -> str:
        w = self._const(c_out, self.c // groups, k, k)
        y = self.op("Conv", [x, w, self._const(c_out)], kernel_shape=[k, k], strides=[stride, stride],
                    pads=[pad] * 4, group=groups)
        self.c, self.s = c_out, (self.s + 2 * pad - k) // stride + 1
        return y

    def block(self, kind: str) -> None:
        x = self.x
        if kind == "conv":
            y = self.op("Relu", [self.conv(x, self.c, groups=self.c if self.c % 2 == 0 else 1)])
        elif kind == "conv_stride" and self.s >= 3:
            y = self.op("Relu", [self.conv(x, self.c + 1, k=2, stride=2, pad=0)])
        elif kind == "residual":
            h = self.op("Relu", [self.conv(x, self.c)])
            y = self.op("Relu", [self.op("Add", [self.conv(h, self.c), x])])
        elif kind == "avgpool" and self.s >= 2:
            y = self.op("AveragePool", [x], kernel_shape=[2, 2], strides=[1, 1])
            self.s -= 1
        elif kind == "maxpool" and self.s >= 3:
            y = self.op("MaxPool", [x], kernel_shape=[3, 2], strides=[2, 1])
            self.s = None  # rectangular from here: only the head follows
        elif kind == "maxpool_pad" and self.s >= 2:  # the ResNet stem's: -inf padding, edge copies in the graph
            y = self.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
            self.s = (self.s - 1) // 2 + 1
        elif kind == "batchnorm":
            y = self.op("BatchNormalization", [x, self._const(self.c), self._const(self.c), self._const(self.c),
                                               self._const(self.c, positive=True)])
        elif kind == "concat":
            y = self.op("Concat", [x, self.op("Relu", [x])], axis=1)
            self.c *= 2
        elif kind == "clip":
            lo, hi = self._name("lo"), self._name("hi")
            self.inits += [init(lo, np.array(-0.3, np.float32)), init(hi, np.array(0.8, np.float32))]
            y = self.op("Clip", [x, lo, hi])
        else:
            return
        self.x = y


def _graph_with_head(tmp: Path, data) -> Graph:
    """A random CNN body (ONNX -> our graph), then a random linear head of 3 outputs, in float64."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    channels, size = data.draw(st.integers(1, 3)), data.draw(st.integers(3, 6))
    net = _Net(rng, channels, size)
    for kind in data.draw(st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3)):
        if net.s is None:
            break
        net.block(kind)
    path = save(tmp / f"body{rng.integers(1 << 30)}.onnx", net.nodes + [helper.make_node("Flatten", [net.x], ["y"])],
                [("x", [1, channels, size, size])], [("y", None)], net.inits)
    body = load_model(path, check=False, cache=False).graph
    n = body.n_outputs
    W = torch.tensor(rng.normal(size=(3, n)) / np.sqrt(n), dtype=torch.float32)
    head = Node("head", "linear", (body.output_name,), (3,), {"W": W, "b": torch.zeros(3)})
    return replace(body, nodes=body.nodes + (head,), output_name="head").to("cpu", DTYPE)


def _box(graph: Graph, data) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    radius_scale = data.draw(st.sampled_from([0.0, 0.05, 0.5]))
    shape = (2,) + graph.input_shape
    centre = torch.rand(shape, generator=gen, dtype=DTYPE) * 2 - 1
    radius = torch.rand(shape, generator=gen, dtype=DTYPE) * radius_scale
    return centre - radius, centre + radius


@no_deadline
@given(data=st.data())
def test_cnn_bounds_are_sound(tmp_path_factory, data) -> None:
    graph = _graph_with_head(tmp_path_factory.mktemp("cnn"), data)
    lower, upper = _box(graph, data)
    C = torch.randn((2, graph.n_outputs), generator=torch.Generator().manual_seed(1), dtype=DTYPE)
    X = attack_points(graph, C, lower, upper, seed=0)
    values = objective_values(graph, C, X)
    assert_inside(values, *ibp_objective(graph, lower, upper, C), "IBP objective")
    result = crown(graph, lower, upper, C)
    assert_inside(values, result.lb, result.ub, "CROWN objective")
    every = graph.forward(X.flatten(0, 1), keep=True)
    for name, (l, u) in ibp(graph, lower, upper).items():
        assert_inside(every[name].reshape(X.shape[:2] + l.shape[1:]), l, u, f"IBP box of {name}")
    for name, (l, u) in result.intermediate.items():
        assert_inside(every[name].reshape(X.shape[:2] + l.shape[1:]), l, u, f"CROWN box of {name}")
    alpha = alpha_crown(graph, lower, upper, C, config=AlphaConfig(iterations=5))
    assert_inside(values, alpha.lb, torch.full_like(alpha.lb, float("inf")), "alpha-CROWN objective")
    assert (alpha.lb >= result.lb - 1e-9).all()
