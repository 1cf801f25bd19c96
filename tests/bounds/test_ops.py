"""Each op rule on its own: intervals contain the forward values, backward rules are valid bounds."""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.bounds.checks import assert_inside, random_points
from tests.bounds.graphs import no_deadline
from verifier.bounds.ops import OPS, relu_relaxation
from verifier.model.graph import Node

DTYPE = torch.float64


def _conv_node(gen: torch.Generator, in_shape: tuple[int, ...], groups: int, stride: int, padding: int,
               dilation: int, k: int) -> Node:
    c_in, H, W = in_shape
    c_out = 2 * groups
    out_hw = [(n + 2 * padding - dilation * (k - 1) - 1) // stride + 1 for n in (H, W)]
    params = {"W": torch.randn(c_out, c_in // groups, k, k, generator=gen, dtype=DTYPE),
              "b": torch.randn(c_out, generator=gen, dtype=DTYPE)}
    attrs = {"stride": (stride, stride), "padding": (padding, padding), "dilation": (dilation, dilation),
             "groups": groups, "in_shape": in_shape}
    return Node("n", "conv", ("x",), (c_out, *out_hw), params, attrs)


def _node(op: str, gen: torch.Generator, variant: int) -> tuple[Node, list[tuple[int, ...]]]:
    """A node of `op` with random parameters, and its inputs' per-sample shapes; `variant` picks
    among the op's attribute settings (strides, paddings, axes, ...). Ops not listed act elementwise."""
    if op == "linear":
        params = {"W": torch.randn(3, 5, generator=gen, dtype=DTYPE), "b": torch.randn(3, generator=gen, dtype=DTYPE)}
        return Node("n", op, ("x",), (3,), params), [(5,)]
    if op == "scale_shift":
        params = {"scale": torch.randn(4, generator=gen, dtype=DTYPE),
                  "shift": torch.randn(4, generator=gen, dtype=DTYPE)}
        return Node("n", op, ("x",), (2, 4), params), [(2, 4)]
    if op == "reshape":
        return Node("n", op, ("x",), (3, 2), attrs={"shape": (3, 2)}), [(6,)]
    if op == "conv":  # (groups, stride, padding, dilation, kernel) over inputs of odd and even sizes
        groups, stride, padding, dilation, k = [(1, 1, 0, 1, 3), (2, 2, 1, 1, 3), (1, 2, 2, 2, 2),
                                                (2, 3, 1, 1, 1), (1, 2, 0, 1, 4)][variant % 5]
        in_shape = (2 * groups, 5 + variant % 2, 6)
        return _conv_node(gen, in_shape, groups, stride, padding, dilation, k), [in_shape]
    if op == "pad":
        pads, value = [(((1, 0), (2, 1)), 0.0), (((0, 2), (0, 0)), -1.5), (((1, 1), (1, 1)), 3.0)][variant % 3]
        shape = (2, 3 + sum(pads[0]), 4 + sum(pads[1]))
        return Node("n", op, ("x",), shape, attrs={"pads": pads, "value": value}), [(2, 3, 4)]
    if op == "add":
        n_in = 2 + variant % 2
        return Node("n", op, tuple(f"x{i}" for i in range(n_in)), (2, 3)), [(2, 3)] * n_in
    if op == "concat":
        axis = variant % 2
        sizes = (1, 3, 2)
        shapes = [(s, 4) if axis == 0 else (4, s) for s in sizes]
        shape = (6, 4) if axis == 0 else (4, 6)
        return Node("n", op, ("a", "b", "c"), shape, attrs={"axis": axis, "sizes": sizes}), shapes
    if op == "transpose":
        perm = [(1, 0, 2), (2, 0, 1), (1, 2, 0)][variant % 3]
        in_shape = (2, 3, 4)
        return Node("n", op, ("x",), tuple(in_shape[p] for p in perm), attrs={"perm": perm}), [in_shape]
    if op == "softmax":  # along either axis of a (2, 3) value
        return Node("n", op, ("x",), (2, 3), attrs={"axis": variant % 2}), [(2, 3)]
    if op == "step":  # comparisons with c, Cast to bool / to an integer; c sometimes hits the box's ends
        kinds = ("greater", "greater_equal", "less", "less_equal", "equal", "nonzero", "trunc")
        c = torch.round(torch.randn(2, 3, generator=gen, dtype=DTYPE))
        kind = kinds[(variant + int(torch.randint(7, (), generator=gen))) % 7]
        return Node("n", op, ("x",), (2, 3), {"c": c}, {"kind": kind}), [(2, 3)]
    if op == "mul":
        return Node("n", op, ("a", "b"), (2, 3)), [(2, 3)] * 2
    if op == "where":
        return Node("n", op, ("c", "a", "b"), (2, 3)), [(2, 3)] * 3
    if op == "power":
        e = torch.tensor([[2.0, 3.0, 4.0], [1.0, 5.0, 0.0]], dtype=DTYPE)  # bases of any sign: integer powers
        return Node("n", op, ("x",), (2, 3), {"e": e}), [(2, 3)]
    return Node("n", op, ("x",), (2, 3)), [(2, 3)]


def _box(in_shape: tuple[int, ...], gen: torch.Generator, batch: int = 3) -> tuple[torch.Tensor, ...]:
    centre = torch.randn((batch,) + in_shape, generator=gen, dtype=DTYPE)
    radius = torch.rand((batch,) + in_shape, generator=gen, dtype=DTYPE)
    radius = torch.where(torch.rand(radius.shape, generator=gen, dtype=DTYPE) < 0.2, 0.0, radius)
    return centre - radius, centre + radius


@no_deadline
@given(op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2**31 - 1), variant=st.integers(0, 5))
def test_interval_contains_forward(op: str, seed: int, variant: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    node, in_shapes = _node(op, gen, variant)
    boxes = [_box(s, gen) for s in in_shapes]
    xs = [random_points(l, u, 200, gen).flatten(0, 1) for l, u in boxes]
    y = OPS[op].forward(node, *xs)
    assert tuple(y.shape[1:]) == node.shape, f"{op} forward has shape {tuple(y.shape[1:])}, node says {node.shape}"
    lo, hi = OPS[op].interval(node, *boxes)
    assert_inside(y.reshape((200, 3) + node.shape), lo, hi, f"{op} interval")


@no_deadline
@given(op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 4),
       variant=st.integers(0, 5))
def test_backward_is_a_valid_lower_bound(op: str, seed: int, rows: int, variant: int) -> None:
    """sum(A * y) >= sum_i sum(A_i * x_i) + bias at points of the box; with equality for affine ops."""
    gen = torch.Generator().manual_seed(seed)
    node, in_shapes = _node(op, gen, variant)
    boxes = [_box(s, gen) for s in in_shapes]
    A = torch.randn((3, rows) + node.shape, generator=gen, dtype=DTYPE)
    A_ins, bias = OPS[op].backward(node, A, tuple(boxes), None)
    assert len(A_ins) == len(in_shapes)
    xs = [random_points(l, u, 200, gen) for l, u in boxes]
    y = OPS[op].forward(node, *(x.flatten(0, 1) for x in xs)).reshape((200, 3) + node.shape)
    exact = (A.unsqueeze(0) * y.unsqueeze(2)).flatten(3).sum(-1)  # (N, B, rows)
    linear = bias + sum((A_in.reshape((3, rows) + s).unsqueeze(0) * x.unsqueeze(2)).flatten(3).sum(-1)
                        for A_in, s, x in zip(A_ins, in_shapes, xs) if A_in is not None)
    if OPS[op].affine:
        torch.testing.assert_close(exact, linear.expand_as(exact))
    else:
        assert (linear <= exact + 1e-9 * (1 + exact.abs())).all(), f"{op} backward is not a lower bound"


@no_deadline
@given(seed=st.integers(0, 2**31 - 1), alpha_low=st.sampled_from([-1.0, 0.0]),
       alpha_high=st.sampled_from([1.0, 2.0]))
def test_relu_relaxation_brackets_relu(seed: int, alpha_low: float, alpha_high: float) -> None:
    """low_slope*x <= relu(x) <= up_slope*x + up_bias on [l, u], even for alphas outside [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    l, u = _box((7,), gen, batch=4)
    alpha = alpha_low + (alpha_high - alpha_low) * torch.rand((4, 2, 7), generator=gen, dtype=DTYPE)
    low_slope, up_slope, up_bias = relu_relaxation(l, u, alpha)
    x = random_points(l, u, 300, gen).unsqueeze(2)  # (N, B, 1, 7)
    y = torch.relu(x)
    tol = 1e-12 * (1 + x.abs())
    assert (low_slope * x <= y + tol).all()
    assert (y <= up_slope * x + up_bias + tol).all()


def test_relu_default_slope_is_crowns_adaptive_choice() -> None:
    l = torch.tensor([[-1.0, -3.0, 1.0, -2.0, -1.0]], dtype=DTYPE)
    u = torch.tensor([[2.0, 1.0, 2.0, -1.0, 1.0]], dtype=DTYPE)
    low_slope, up_slope, up_bias = relu_relaxation(l, u, None)
    torch.testing.assert_close(low_slope[0, 0], torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0], dtype=DTYPE))
    torch.testing.assert_close(up_slope[0, 0], torch.tensor([2 / 3, 0.25, 1.0, 0.0, 0.5], dtype=DTYPE))
    torch.testing.assert_close(up_bias[0, 0], torch.tensor([2 / 3, 0.75, 0.0, 0.0, 0.5], dtype=DTYPE))
