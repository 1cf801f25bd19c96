"""sigmoid, tanh and leaky_relu: their linear relaxations bracket the activation on the whole box
(with no tolerance beyond the rule's own rounding margin), their backward rules give sound lower
bounds, and IBP/CROWN stay sound on random networks that use them."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.checks import assert_inside, attack_points, objective_values, random_points
from tests.bounds.graphs import LEAKY_ALPHAS, Case, GraphBuilder, activation_cases, no_deadline
from verifier.bounds.activations import (ACTIVATION_OPS, SIGMOID, TANH, SShape, leaky_relu_relaxation,
                                         s_shape_relaxation)
from verifier.bounds.alpha import AlphaConfig, alpha_crown
from verifier.bounds.crown import crown
from verifier.bounds.ibp import ibp, ibp_objective
from verifier.bounds.ops import OPS
from verifier.model.graph import Graph, Node

DTYPE = torch.float64
S_SHAPES = {"sigmoid": SIGMOID, "tanh": TANH}


# --- input boxes --------------------------------------------------------------------------------------

_REGIMES = {  # name -> (centre scale, half-width scale): which part of the S shape the box covers
    "point": (5.0, 0.0),
    "tiny": (5.0, 1e-9),
    "narrow": (3.0, 1e-3),
    "moderate": (2.0, 1.5),
    "wide": (3.0, 20.0),
    "saturated": (60.0, 5.0),
    "huge": (1e3, 1e4),
}


def _regime_boxes(regime: str, n: int, gen: torch.Generator, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    centre_scale, width_scale = _REGIMES[regime]
    centre = torch.randn(n, generator=gen, dtype=DTYPE) * centre_scale
    lo = torch.rand(n, generator=gen, dtype=DTYPE) * width_scale
    hi = torch.rand(n, generator=gen, dtype=DTYPE) * width_scale
    return (centre - lo).to(dtype), (centre + hi).to(dtype)


@st.composite
def boxes(draw: st.DrawFn, dtype: torch.dtype = DTYPE) -> tuple[torch.Tensor, torch.Tensor]:
    """(l, u), each (n,): a batch from random regimes (straddling 0, one-sided, saturated, zero-width,
    ...), plus a few pairs drawn by hypothesis itself so that it can hunt for bad corners."""
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    parts = [_regime_boxes(r, 16, gen, dtype) for r in draw(st.lists(st.sampled_from(sorted(_REGIMES)),
                                                                     min_size=1, max_size=3))]
    ends = st.one_of(st.floats(-80, 80), st.floats(-1e-6, 1e-6), st.floats(-1e6, 1e6), st.just(0.0))
    pairs = draw(st.lists(st.tuples(ends, ends), min_size=1, max_size=8))
    pairs_t = torch.tensor([sorted(p) for p in pairs], dtype=dtype)
    parts.append((pairs_t[:, 0], pairs_t[:, 1]))
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _grid(l: torch.Tensor, u: torch.Tensor, n: int = 1001) -> torch.Tensor:
    """(n + 2, *l.shape) points of [l, u]: both ends exactly, and a dense even grid between."""
    t = torch.linspace(0, 1, n, dtype=l.dtype).reshape((n,) + (1,) * l.dim())
    inner = torch.minimum(torch.maximum(l + t * (u - l), l), u)
    return torch.cat([l.unsqueeze(0), inner, u.unsqueeze(0)])


def _unbatch(t: torch.Tensor) -> torch.Tensor:
    return t.squeeze(1)


# --- sigmoid and tanh relaxations ----------------------------------------------------------------

@no_deadline
@given(st.sampled_from(sorted(S_SHAPES)), st.data(), st.sampled_from([torch.float64, torch.float32]))
def test_s_shape_lines_bracket_the_activation(name: str, data: st.DataObject, dtype: torch.dtype) -> None:
    """No tolerance at all: the rule's own rounding margin must cover every rounding error."""
    l, u = data.draw(boxes(dtype))
    s: SShape = S_SHAPES[name]
    low_slope, low_bias, up_slope, up_bias = map(_unbatch, s_shape_relaxation(s, l, u))
    for t in (low_slope, low_bias, up_slope, up_bias):
        assert torch.isfinite(t).all() and t.dtype == dtype
    assert (low_slope >= 0).all() and (up_slope >= 0).all()  # s is increasing; forward bounds rely on it
    x = _grid(l, u)
    y = s.fn(x)
    below = low_slope * x + low_bias - y
    above = y - (up_slope * x + up_bias)
    assert (below <= 0).all(), f"{name} lower line above s by {below.max().item():.3g}"
    assert (above <= 0).all(), f"{name} upper line below s by {above.max().item():.3g}"


@pytest.mark.parametrize("name", sorted(S_SHAPES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_s_shape_edge_boxes(name: str, dtype: torch.dtype) -> None:
    """Zero width, saturation on both sides, subnormal widths, infinite ends and the inflection point:
    finite, sound, and constant (exact) on point boxes."""
    inf = float("inf")
    l = torch.tensor([-50.0, 0.0, 1e-300, -1e-30, 30.0, -inf, -inf, 2.0, -1e30, -3.0, 0.0], dtype=dtype)
    u = torch.tensor([50.0, 0.0, 1e-300, 1e-30, 40.0, 1.0, inf, inf, 1e30, 3.0, 1e-3], dtype=dtype)
    s = S_SHAPES[name]
    low_slope, low_bias, up_slope, up_bias = map(_unbatch, s_shape_relaxation(s, l, u))
    for t in (low_slope, low_bias, up_slope, up_bias):
        assert torch.isfinite(t).all()
    point = l == u
    assert (low_slope[point] == 0).all() and (up_slope[point] == 0).all()
    atol = 1e-4 if dtype == torch.float32 else 1e-13  # the rule's rounding margin, no more
    torch.testing.assert_close(low_bias[point], s.fn(l[point]), rtol=0, atol=atol)
    torch.testing.assert_close(up_bias[point], s.fn(l[point]), rtol=0, atol=atol)
    finite = torch.isfinite(l) & torch.isfinite(u)
    x = _grid(torch.where(finite, l, l.clamp(min=-1e3)), torch.where(finite, u, u.clamp(max=1e3)))
    y = s.fn(x)
    assert (low_slope * x + low_bias <= y).all() and (y <= up_slope * x + up_bias).all()


def test_s_shape_lines_are_crowns() -> None:
    """Not loose: the convex side gets the chord above and the midpoint tangent below, and a straddling
    box gets a tangent line that touches s near the ends (up to the rounding margin)."""
    l = torch.tensor([-4.0, -6.0], dtype=DTYPE)
    u = torch.tensor([-1.0, 6.0], dtype=DTYPE)
    low_slope, low_bias, up_slope, up_bias = map(_unbatch, s_shape_relaxation(SIGMOID, l, u))
    s = torch.sigmoid
    chord = (s(u[0]) - s(l[0])) / (u[0] - l[0])
    torch.testing.assert_close(up_slope[0], chord)
    torch.testing.assert_close(up_bias[0], s(l[0]) - chord * l[0])
    m = torch.tensor(-2.5, dtype=DTYPE)
    torch.testing.assert_close(low_slope[0], s(m) * s(-m))
    torch.testing.assert_close(low_bias[0], s(m) - s(m) * s(-m) * m)
    # symmetric straddling box: the upper tangent passes through (l, s(l)), the lower through (u, s(u)),
    # up to the bisection's precision (1e-6 of the width)
    torch.testing.assert_close(up_slope[1] * l[1] + up_bias[1], s(l[1]), rtol=0, atol=1e-5)
    torch.testing.assert_close(low_slope[1] * u[1] + low_bias[1], s(u[1]), rtol=0, atol=1e-5)
    torch.testing.assert_close(low_slope[1], up_slope[1])  # point symmetry of sigmoid


def test_s_shape_relaxation_is_differentiable_in_the_bounds() -> None:
    l = torch.tensor([-50.0, -1.0, 0.5, 2.0, -3.0], dtype=DTYPE, requires_grad=True)
    u = torch.tensor([50.0, -0.5, 0.5, 2.0 + 1e-12, 4.0], dtype=DTYPE, requires_grad=True)
    for s in S_SHAPES.values():
        total = sum(t.sum() for t in s_shape_relaxation(s, l, u))
        gl, gu = torch.autograd.grad(total, (l, u))
        assert torch.isfinite(gl).all() and torch.isfinite(gu).all()


# --- leaky_relu relaxation -----------------------------------------------------------------------

@no_deadline
@given(st.sampled_from(LEAKY_ALPHAS + (0.7, 7.0)), st.data(), st.sampled_from([None, (0.0, 1.0), (-0.5, 1.5)]))
def test_leaky_relu_lines_bracket_the_activation(alpha: float, data: st.DataObject,
                                                 relax_range: tuple[float, float] | None) -> None:
    """For every relaxation parameter, even outside [0, 1] (it is projected)."""
    l, u = data.draw(boxes())
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    l, u = l.unsqueeze(0), u.unsqueeze(0)  # (B=1, n)
    relax = None
    if relax_range is not None:
        lo, hi = relax_range
        relax = lo + (hi - lo) * torch.rand((1, 3) + l.shape[1:], generator=gen, dtype=DTYPE)
    rel = leaky_relu_relaxation(alpha, l, u, relax)
    low_bias = 0.0 if rel.low_bias is None else rel.low_bias
    up_bias = 0.0 if rel.up_bias is None else rel.up_bias
    x = _grid(l, u, 201).unsqueeze(2)  # (N, 1, 1, n): broadcasts against the rows of the slopes
    y = torch.where(x >= 0, x, alpha * x)
    tol = 1e-12 * (1 + x.abs())
    assert (rel.low_slope * x + low_bias <= y + tol).all()
    assert (y <= rel.up_slope * x + up_bias + tol).all()


def test_leaky_relu_default_slope_is_crowns_adaptive_choice() -> None:
    l = torch.tensor([[-1.0, -3.0, 1.0, -2.0, -1.0]], dtype=DTYPE)
    u = torch.tensor([[2.0, 1.0, 2.0, -1.0, 1.0]], dtype=DTYPE)
    rel = leaky_relu_relaxation(0.1, l, u, None)
    torch.testing.assert_close(rel.low_slope[0, 0], torch.tensor([1.0, 0.1, 1.0, 0.1, 1.0], dtype=DTYPE))
    chord = (u - 0.1 * l) / (u - l)
    expected_up = torch.where(l >= 0, 1.0, torch.where(u <= 0, 0.1, chord))
    torch.testing.assert_close(rel.up_slope[0, 0], expected_up[0])
    torch.testing.assert_close(rel.up_bias[0, 0], torch.where(l * u < 0, 0.1 * l - chord * l, 0.0)[0])
    assert rel.low_bias is None


def test_leaky_relu_attributes_and_exactness() -> None:
    rule = ACTIVATION_OPS["leaky_relu"]
    x = torch.tensor([[-2.0, 0.0, 3.0]], dtype=DTYPE)
    node = Node("n", "leaky_relu", ("x",), (3,), attrs={"alpha": 0.25})
    torch.testing.assert_close(rule.forward(node, x), torch.tensor([[-0.5, 0.0, 3.0]], dtype=DTYPE))
    l, u = torch.tensor([[-2.0, -1.0, 0.0]], dtype=DTYPE), torch.tensor([[-1.0, 1.0, 2.0]], dtype=DTYPE)
    assert rule.exact_where(l, u).tolist() == [[True, False, True]]
    with pytest.raises(ValueError, match="'bad'.*alpha=-0.5"):
        rule.forward(Node("bad", "leaky_relu", ("x",), (3,), attrs={"alpha": -0.5}), x)


# --- every rule on its own ---------------------------------------------------------------------------

def _node(op: str, gen: torch.Generator) -> Node:
    attrs = {"alpha": LEAKY_ALPHAS[int(torch.randint(len(LEAKY_ALPHAS), (1,), generator=gen))]}
    return Node("n", op, ("x",), (2, 8), attrs=attrs if op == "leaky_relu" else {})


@no_deadline
@given(st.sampled_from(sorted(ACTIVATION_OPS)), st.data(), st.integers(1, 4))
def test_backward_is_a_sound_lower_bound(op: str, data: st.DataObject, rows: int) -> None:
    """sum(A * y) >= sum(A_in * x) + bias at points of the box, for A of both signs, per batch element."""
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    l, u = (t.repeat(48 // t.numel() + 1)[:48].reshape(3, 2, 8) for t in data.draw(boxes()))
    node = _node(op, gen)
    rule = ACTIVATION_OPS[op]
    A = torch.randn((data.draw(st.sampled_from([1, 3])), rows, 2, 8), generator=gen, dtype=DTYPE)
    (A_in,), bias = rule.backward(node, A, ((l, u),), None)
    A_in = A_in.reshape(A_in.shape[:2] + (2, 8))
    assert bias.shape in ((3, rows), (1, rows))
    x = torch.cat([random_points(l, u, 100, gen), l.unsqueeze(0), u.unsqueeze(0)])  # (N, 3, 2, 8)
    y = rule.forward(node, x.flatten(0, 1)).reshape(x.shape)
    exact = (A.unsqueeze(0) * y.unsqueeze(2)).flatten(3).sum(-1)  # (N, 3, rows)
    linear = (A_in.unsqueeze(0) * x.unsqueeze(2)).flatten(3).sum(-1) + bias
    scale = (A.abs().unsqueeze(0) * (1 + x.abs()).unsqueeze(2)).flatten(3).sum(-1)
    assert (linear <= exact + 1e-12 * scale).all(), f"{op} backward is not a lower bound"


@no_deadline
@given(st.sampled_from(sorted(ACTIVATION_OPS)), st.data())
def test_interval_contains_forward(op: str, data: st.DataObject) -> None:
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    l, u = (t.unsqueeze(0) for t in data.draw(boxes()))
    node = _node(op, gen)
    rule = ACTIVATION_OPS[op]
    x = _grid(l, u, 301)
    y = rule.forward(node, x.flatten(0, 1)).reshape(x.shape)
    lo, hi = rule.interval(node, (l, u))
    assert (lo <= y).all() and (y <= hi).all()


# --- networks ----------------------------------------------------------------------------------

def _assert_crown_sound(case: Case, lb: torch.Tensor, ub: torch.Tensor, intermediate) -> None:
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    assert_inside(objective_values(case.graph, case.C, X), lb, ub, "CROWN objective")
    values = case.graph.forward(X.flatten(0, 1), keep=True)
    for name, (l, u) in intermediate.items():
        v = values[name].reshape(X.shape[:2] + case.graph.by_name[name].shape)
        assert_inside(v, l, u, f"CROWN intermediate bounds of {name}")


@no_deadline
@given(activation_cases())
def test_ibp_is_sound_on_activation_networks(case: Case) -> None:
    boxes_ = ibp(case.graph, case.lower, case.upper)
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    values = case.graph.forward(X.flatten(0, 1), keep=True)
    for node in case.graph.nodes:
        l, u = boxes_[node.name]
        assert_inside(values[node.name].reshape(X.shape[:2] + node.shape), l, u, f"IBP box of {node.name}")
    assert_inside(objective_values(case.graph, case.C, X),
                  *ibp_objective(case.graph, case.lower, case.upper, case.C), "IBP objective")


@no_deadline
@given(activation_cases(ops=("sigmoid", "tanh", "leaky_relu", "relu")))
def test_crown_is_sound_on_activation_networks(case: Case) -> None:
    result = crown(case.graph, case.lower, case.upper, case.C)
    relaxed = {n.inputs[0] for n in case.graph.nodes if n.op not in ("input", "linear", "reshape")}
    assert set(result.intermediate) == relaxed
    _assert_crown_sound(case, result.lb, result.ub, result.intermediate)


@no_deadline
@given(activation_cases(ops=("leaky_relu",)), st.sampled_from([(0.0, 1.0), (-0.5, 1.5)]))
def test_crown_is_sound_for_any_leaky_relu_parameters(case: Case, relax_range: tuple[float, float]) -> None:
    lo, hi = relax_range
    gen = torch.Generator().manual_seed(case.seed + 1)
    rows = 2 * case.C.shape[-2]
    relax = {n.name: lo + (hi - lo) * torch.rand((case.batch, rows) + n.shape, generator=gen, dtype=DTYPE)
             for n in case.graph.nodes if n.op == "leaky_relu"}
    result = crown(case.graph, case.lower, case.upper, case.C, alphas=relax)
    _assert_crown_sound(case, result.lb, result.ub, result.intermediate)


@settings(deadline=None, max_examples=max(10, settings.default.max_examples // 5))
@given(activation_cases(ops=("sigmoid", "relu")))
def test_alpha_crown_runs_and_is_sound_next_to_sigmoids(case: Case) -> None:
    """alpha-CROWN optimises the relus only; the sigmoids keep their fixed relaxation."""
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations=3))
    assert set(result.alphas) == {n.name for n in case.graph.nodes if n.op == "relu"}
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    assert_inside(objective_values(case.graph, case.C, X), result.lb,
                  torch.full_like(result.lb, math.inf), "alpha-CROWN objective")


def _sigmoid_mlp(seed: int, op: str) -> Graph:
    b = GraphBuilder(torch.Generator().manual_seed(seed))
    x = b.add("input", (), (4,))
    for _ in range(3):
        x = b.add(op, (b.linear(x, 16, bias_scale=0.5),), (16,))
    return b.graph(b.linear(x, 3))


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
def test_crown_is_tighter_than_ibp_on_average(op: str) -> None:
    """Not a per-neuron claim (a tangent line can be looser than a saturated interval on some rows),
    but over many random nets and small-to-moderate boxes CROWN's widths are smaller on average."""
    crown_width, ibp_width = [], []
    for seed in range(12):
        graph = _sigmoid_mlp(seed, op)
        gen = torch.Generator().manual_seed(100 + seed)
        centre = torch.randn(4, 4, generator=gen, dtype=DTYPE)
        radius = torch.tensor([0.01, 0.1, 0.5, 1.0], dtype=DTYPE).unsqueeze(1)
        result = crown(graph, centre - radius, centre + radius)
        lb, ub = ibp_objective(graph, centre - radius, centre + radius)
        crown_width.append(result.ub - result.lb)
        ibp_width.append(ub - lb)
    crown_mean, ibp_mean = torch.stack(crown_width).mean(), torch.stack(ibp_width).mean()
    assert crown_mean <= ibp_mean, (crown_mean.item(), ibp_mean.item())
