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


def _node(op: str, shape: tuple[int, ...], gen: torch.Generator, in_shape: tuple[int, ...]) -> Node:
    if op == "linear":
        params = {"W": torch.randn(shape[0], in_shape[0], generator=gen, dtype=DTYPE),
                  "b": torch.randn(shape, generator=gen, dtype=DTYPE)}
        return Node("n", op, ("x",), shape, params)
    if op == "scale_shift":
        params = {"scale": torch.randn(shape[-1:], generator=gen, dtype=DTYPE),
                  "shift": torch.randn(shape[-1:], generator=gen, dtype=DTYPE)}
        return Node("n", op, ("x",), shape, params)
    if op == "reshape":
        return Node("n", op, ("x",), shape, attrs={"shape": shape})
    return Node("n", op, ("x",), shape)


_SHAPES = {  # op -> (input shape, output shape)
    "linear": ((5,), (3,)),
    "relu": ((2, 3), (2, 3)),
    "reshape": ((6,), (3, 2)),
    "scale_shift": ((2, 4), (2, 4)),
}


def _box(in_shape: tuple[int, ...], gen: torch.Generator, batch: int = 3) -> tuple[torch.Tensor, ...]:
    centre = torch.randn((batch,) + in_shape, generator=gen, dtype=DTYPE)
    radius = torch.rand((batch,) + in_shape, generator=gen, dtype=DTYPE)
    radius = torch.where(torch.rand(radius.shape, generator=gen, dtype=DTYPE) < 0.2, 0.0, radius)
    return centre - radius, centre + radius


@no_deadline
@given(op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2**31 - 1))
def test_interval_contains_forward(op: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    in_shape, shape = _SHAPES[op]
    node = _node(op, shape, gen, in_shape)
    l, u = _box(in_shape, gen)
    x = random_points(l, u, 200, gen)
    y = OPS[op].forward(node, x.flatten(0, 1)).reshape((200, 3) + shape)
    lo, hi = OPS[op].interval(node, (l, u))
    assert_inside(y, lo, hi, f"{op} interval")


@no_deadline
@given(op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 4))
def test_backward_is_a_valid_lower_bound(op: str, seed: int, rows: int) -> None:
    """sum(A * y) >= sum(A_in * x) + bias at points of the box; with equality for affine ops."""
    gen = torch.Generator().manual_seed(seed)
    in_shape, shape = _SHAPES[op]
    node = _node(op, shape, gen, in_shape)
    l, u = _box(in_shape, gen)
    A = torch.randn((3, rows) + shape, generator=gen, dtype=DTYPE)
    (A_in,), bias = OPS[op].backward(node, A, ((l, u),), None)
    A_in = A_in.reshape((3, rows) + in_shape)
    x = random_points(l, u, 200, gen)
    y = OPS[op].forward(node, x.flatten(0, 1)).reshape((200, 3) + shape)
    exact = (A.unsqueeze(0) * y.unsqueeze(2)).flatten(3).sum(-1)  # (N, B, rows)
    linear = (A_in.unsqueeze(0) * x.unsqueeze(2)).flatten(3).sum(-1) + bias
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
