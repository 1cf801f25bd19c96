"""Each simplification keeps outputs equal and does the rewrite it promises."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from onnx import helper

from tests.model.onnx_builders import init, ops, rand, raw_graph, save
from verifier.model.graph import Graph, Node
from verifier.model.simplify import (PASSES, drop_identities, merge_conv_into_scale_shift,
                                     merge_linear_into_scale_shift, merge_reshapes, merge_scale_shift_into_linear,
                                     merge_scale_shifts, simplify)


def _same_outputs(a: Graph, b: Graph, seed: int = 0) -> None:
    x = torch.randn((9,) + a.input_shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ya, yb = a.to("cpu", torch.float64).forward(x), b.to("cpu", torch.float64).forward(x)
    assert ya.shape == yb.shape
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Graph:
    """Normalisation, Flatten, MatMul+Add twice, Mul, Relu, reshapes, Gemm, Neg: every pass has work."""
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["a"], name="sub"),
        helper.make_node("Div", ["a", "std"], ["b"], name="div"),
        helper.make_node("Flatten", ["b"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "W1"], ["h1"], name="mm1"),
        helper.make_node("Add", ["h1", "b1"], ["h2"], name="add1"),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"], name="mm2"),
        helper.make_node("Add", ["h3", "b2"], ["h4"], name="add2"),
        helper.make_node("Mul", ["h4", "two"], ["h5"], name="mul"),
        helper.make_node("Relu", ["h5"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "s2"], ["r0"], name="resh0"),  # to the same shape
        helper.make_node("Reshape", ["r0", "s1"], ["r1"], name="resh1"),
        helper.make_node("Reshape", ["r1", "s2"], ["r2"], name="resh2"),
        helper.make_node("Gemm", ["r2", "W3", "b3"], ["g"], name="fc", transB=1),
        helper.make_node("Neg", ["g"], ["y"], name="neg"),
    ]
    inits = [init("mean", rand(1, 2, 1, 2)), init("std", np.float32(1.5) + rand(1, 2, 2, 1) ** 2),
             init("W1", rand(8, 6)), init("b1", rand(6)), init("W2", rand(6, 4)), init("b2", rand(4)),
             init("two", np.array(2.0, np.float32)), init("s1", np.array([1, 2, 2], np.int64)),
             init("s2", np.array([1, 4], np.int64)), init("W3", rand(3, 4)), init("b3", rand(3))]
    path = save(tmp_path_factory.mktemp("m") / "m.onnx", nodes, [("x", [1, 2, 2, 2])], [("y", [1, 3])], inits)
    return raw_graph(path)


def test_each_pass_keeps_outputs(mixed: Graph) -> None:
    """Applied in order, every pass has something to rewrite and none changes the outputs (the
    conv pass has a graph of its own below)."""
    g = mixed
    for p in (p for p in PASSES if p is not merge_conv_into_scale_shift):
        out = p(g)
        assert out is not g, f"{p.__name__} found nothing to do"
        _same_outputs(g, out)
        g = out


def test_simplify_reaches_the_minimal_graph(mixed: Graph) -> None:
    out = simplify(mixed)
    _same_outputs(mixed, out)
    assert ops(out) == ["input", "reshape", "linear", "relu", "linear"]
    assert out.nodes[1].source == "flat" and out.nodes[2].source == "sub, div, mm1, add1, mm2, add2, mul"
    assert simplify(out) is out


# ---- hand-built chains ------------------------------------------------------------------------------

def _chain(input_shape: tuple[int, ...], layers: list[tuple[str, dict, dict, tuple[int, ...]]]) -> Graph:
    nodes = [Node("in", "input", (), input_shape)]
    for i, (op, params, attrs, shape) in enumerate(layers):
        nodes.append(Node(f"n{i}", op, (nodes[-1].name,), shape, params, attrs, source=f"s{i}"))
    return Graph(tuple(nodes), "in", nodes[-1].name)


def _lin(m: int, n: int) -> tuple[str, dict, dict, tuple[int, ...]]:
    return ("linear", {"W": torch.randn(m, n), "b": torch.randn(m)}, {}, (m,))


def _ss(shape: tuple[int, ...], pshape: tuple[int, ...]) -> tuple[str, dict, dict, tuple[int, ...]]:
    return ("scale_shift", {"scale": torch.randn(pshape), "shift": torch.randn(pshape)}, {}, shape)


def _rs(shape: tuple[int, ...]) -> tuple[str, dict, dict, tuple[int, ...]]:
    return ("reshape", {}, {"shape": shape}, shape)


def test_no_merge_across_relu() -> None:
    g = _chain((3,), [_lin(4, 3), ("relu", {}, {}, (4,)), _lin(2, 4), _rs((1, 2)), ("relu", {}, {}, (1, 2))])
    assert simplify(g) is g


def test_drop_identities() -> None:
    g = _chain((4,), [_rs((4,)), ("scale_shift", {"scale": torch.ones(()), "shift": torch.zeros(4)}, {}, (4,)),
                      ("linear", {"W": torch.eye(4), "b": torch.zeros(4)}, {}, (4,)), ("relu", {}, {}, (4,))])
    out = drop_identities(g)
    assert ops(out) == ["input", "relu"] and out.output_name == "n3" and out.nodes[1].inputs == ("in",)


def test_output_node_can_be_merged_away() -> None:
    g = _chain((3,), [_lin(2, 3), _ss((2,), (2,))])
    out = merge_linear_into_scale_shift(g)
    assert ops(out) == ["input", "linear"] and out.output_name == "n0" and out.nodes[1].source == "s0, s1"
    _same_outputs(g, out)


def test_scale_shift_through_reshapes_into_linear() -> None:
    g = _chain((2, 3), [_ss((2, 3), (2, 1)), _rs((3, 2)), _rs((6,)), _lin(4, 6)])
    out = merge_scale_shift_into_linear(g)
    assert ops(out) == ["input", "reshape", "reshape", "linear"]
    _same_outputs(g, out)
    assert ops(merge_reshapes(out)) == ["input", "reshape", "linear"]


def test_scale_shifts_merge() -> None:
    g = _chain((2, 3), [_ss((2, 3), (3,)), _ss((2, 3), (2, 1)), ("relu", {}, {}, (2, 3))])
    out = merge_scale_shifts(g)
    assert ops(out) == ["input", "scale_shift", "relu"]
    _same_outputs(g, out)


_LAYER = st.sampled_from(["linear", "relu", "scale_shift", "reshape"])


@given(layers=st.lists(_LAYER, min_size=1, max_size=8), seed=st.integers(0, 2**16))
def test_simplify_random_chains(layers: list[str], seed: int) -> None:
    """Any chain of our ops: same outputs, and no affine node left next to another (reshapes aside)."""
    torch.manual_seed(seed)
    shape: tuple[int, ...] = (2, 3)
    spec = []
    for op in layers:
        n = int(np.prod(shape))
        if op == "linear":
            if len(shape) != 1:
                spec.append(_rs((n,)))
            spec.append(_lin(int(torch.randint(1, 6, ())), n))
        elif op == "relu":
            spec.append(("relu", {}, {}, shape))
        elif op == "scale_shift":
            spec.append(_ss(shape, shape[-1:] if seed % 2 else shape))
        else:
            spec.append(_rs((n,) if len(shape) > 1 else (1, n)))
        shape = spec[-1][3]
    g = _chain((2, 3), spec)
    out = simplify(g)
    _same_outputs(g, out, seed)
    kinds = [op for op in ops(out) if op != "reshape"]
    affine = {"linear", "scale_shift"}
    assert not any(a in affine and b in affine for a, b in zip(kinds, kinds[1:])), ops(out)
    assert not any(a == b == "reshape" for a, b in zip(ops(out), ops(out)[1:]))


@pytest.mark.parametrize("per_channel", [True, False])
def test_batch_norm_fuses_into_the_conv(per_channel: bool) -> None:
    """conv -> scale_shift constant within each channel becomes one conv; one varying across
    positions stays."""
    gen = torch.Generator().manual_seed(0)
    conv = ("conv", {"W": torch.randn(3, 2, 3, 3, generator=gen), "b": torch.randn(3, generator=gen)},
            {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1, "in_shape": (2, 4, 4)}, (3, 4, 4))
    shape = (3, 1, 1) if per_channel else (3, 4, 1)
    bn = ("scale_shift", {"scale": torch.randn(shape, generator=gen), "shift": torch.randn(shape, generator=gen)},
          {}, (3, 4, 4))
    g = _chain((2, 4, 4), [conv, bn])
    out = merge_conv_into_scale_shift(g)
    _same_outputs(g, out)
    assert ops(out) == (["input", "conv"] if per_channel else ["input", "conv", "scale_shift"])
