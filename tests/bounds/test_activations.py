"""sigmoid, tanh and leaky_relu: their linear relaxations bracket the activation on the whole box
(with no tolerance beyond the rule's own rounding margin) for every relaxation parameter, their
backward rules give sound lower bounds, IBP/CROWN stay sound on random networks that use them, and
alpha-CROWN, which optimises the parameters, stays sound, never loses ground on CROWN and tightens."""
from __future__ import annotations

import math
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.checks import assert_inside, attack_points, objective_values, random_points
from tests.bounds.graphs import LEAKY_ALPHAS, Case, GraphBuilder, activation_cases, no_deadline
from verifier.bounds.activations import (ACTIVATION_OPS, SIGMOID, TANH, SShape, default_s_shape_relax,
                                         leaky_relu_relaxation, s_shape_relaxation)
from verifier.bounds.alpha import AlphaConfig, alpha_crown, initial_alphas
from verifier.bounds.crown import crown
from verifier.bounds.ibp import ibp, ibp_objective
from verifier.bounds.ops import OPS
from verifier.model.graph import Graph, Node

DTYPE = torch.float64
S_SHAPES = {"sigmoid": SIGMOID, "tanh": TANH}
# Relaxation parameters: the rules' defaults, the valid range, and beyond it (the rules project).
RELAX_RANGES = [None, (0.0, 1.0), (-0.5, 1.5)]


def random_relax(op: str, shape: tuple[int, ...], relax_range: tuple[float, float],
                 gen: torch.Generator, dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """Uniform parameters for an `op` node: of `shape` (B, R, *s), with a trailing 2 for the two lines
    of sigmoid/tanh. A fifth of them sit exactly on the ends of the range, where clamps bite."""
    shape = shape + ((2,) if op in S_SHAPES else ())
    lo, hi = relax_range
    t = lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=DTYPE)
    pick = torch.rand(shape, generator=gen, dtype=DTYPE)
    t = torch.where(pick < 0.1, lo, torch.where(pick < 0.2, hi, t))
    return t.to(dtype)


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
@given(st.sampled_from(sorted(S_SHAPES)), st.data(), st.sampled_from([torch.float64, torch.float32]),
       st.sampled_from(RELAX_RANGES))
def test_s_shape_lines_bracket_the_activation(name: str, data: st.DataObject, dtype: torch.dtype,
                                              relax_range: tuple[float, float] | None) -> None:
    """No tolerance at all: the rule's own rounding margin must cover every rounding error, for CROWN's
    lines and for any tangent-point parameters (3 rows of them per neuron), even out of range."""
    l, u = (t.unsqueeze(0) for t in data.draw(boxes(dtype)))  # (B=1, n)
    s: SShape = S_SHAPES[name]
    relax = None
    if relax_range is not None:
        gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
        relax = random_relax(name, (1, 3) + l.shape[1:], relax_range, gen, dtype)
    low_slope, low_bias, up_slope, up_bias = s_shape_relaxation(s, l, u, relax)
    assert low_slope.shape == (1, 1 if relax is None else 3) + l.shape[1:]
    for t in (low_slope, low_bias, up_slope, up_bias):
        assert torch.isfinite(t).all() and t.dtype == dtype
    assert (low_slope >= 0).all() and (up_slope >= 0).all()  # s is increasing; forward bounds rely on it
    x = _grid(l, u).unsqueeze(2)  # (N, 1, 1, n): broadcasts against the rows
    y = s.fn(x)
    below = low_slope * x + low_bias - y
    above = y - (up_slope * x + up_bias)
    assert (below <= 0).all(), f"{name} lower line above s by {below.max().item():.3g}"
    assert (above <= 0).all(), f"{name} upper line below s by {above.max().item():.3g}"


@no_deadline
@given(st.sampled_from(sorted(S_SHAPES)), st.data(), st.sampled_from([torch.float64, torch.float32]))
def test_s_shape_default_parameters_are_crowns_lines(name: str, data: st.DataObject, dtype: torch.dtype) -> None:
    """`default_s_shape_relax`, passed explicitly (per row), gives the very lines of relax=None: so
    iteration 0 of alpha-CROWN is CROWN."""
    l, u = (t.unsqueeze(0) for t in data.draw(boxes(dtype)))
    s = S_SHAPES[name]
    relax = default_s_shape_relax(l, u).unsqueeze(1)
    assert ((relax == 0) | (relax == 0.5)).all() and relax.shape == (1, 1) + l.shape[1:] + (2,)
    for given_, default in zip(s_shape_relaxation(s, l, u, relax), s_shape_relaxation(s, l, u)):
        assert torch.equal(given_, default)


def _line(slope: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return slope * x + bias


@pytest.mark.parametrize("name", sorted(S_SHAPES))
def test_s_shape_parameters_move_the_tangent_point_over_its_valid_range(name: str) -> None:
    """t = 0 is the end of the range nearer the inflection point, t = 1 the far end of the box. Box 0
    is on the concave side: the upper tangent at l, at u. Box 1 straddles 0: t = 0 gives CROWN's upper
    tangent through (l, s(l)) and lower one through (u, s(u)), t = 1 the tangents at u and at l. Box 2
    is on the convex side: the lower tangent at u, at l. Out-of-range values act as the nearest end."""
    s = S_SHAPES[name]
    l = torch.tensor([[0.5, -3.0, -4.0]], dtype=DTYPE)
    u = torch.tensor([[3.0, 2.0, -1.0]], dtype=DTYPE)
    t = torch.tensor([0.0, 1.0, -0.7, 1.3], dtype=DTYPE).reshape(1, 4, 1, 1).expand(1, 4, 3, 2)
    low_slope, low_bias, up_slope, up_bias = s_shape_relaxation(s, l, u, t)
    at = lambda x: (_line(up_slope, up_bias, x), _line(low_slope, low_bias, x))  # noqa: E731
    close = dict(rtol=0, atol=1e-12)
    for row in (0, 2):  # t = 0 (and below): tangent at l on the concave box, CROWN's lines when straddling
        torch.testing.assert_close(up_slope[0, row, 0], s.grad(l[0, 0]), **close)
        torch.testing.assert_close(at(l)[0][0, row, 0], s.fn(l[0, 0]), **close)
        torch.testing.assert_close(at(l)[0][0, row, 1], s.fn(l[0, 1]), rtol=0, atol=1e-5)  # bisection's precision
        torch.testing.assert_close(at(u)[1][0, row, 1], s.fn(u[0, 1]), rtol=0, atol=1e-5)
        torch.testing.assert_close(low_slope[0, row, 2], s.grad(u[0, 2]), **close)  # reflected: at u
    for row in (1, 3):  # t = 1 (and above): upper tangents at u, lower ones at l
        torch.testing.assert_close(up_slope[0, row, :2], s.grad(u[0, :2]), **close)
        torch.testing.assert_close(at(u)[0][0, row, :2], s.fn(u[0, :2]), **close)
        torch.testing.assert_close(low_slope[0, row, 1:], s.grad(l[0, 1:]), **close)
        torch.testing.assert_close(at(l)[1][0, row, 1:], s.fn(l[0, 1:]), **close)
    # the chords do not move: the lower line of box 0 and the upper line of box 2
    assert (low_slope[0, :, 0] == low_slope[0, 0, 0]).all() and (up_slope[0, :, 2] == up_slope[0, 0, 2]).all()
    # NaN and infinite parameters are projected too
    odd = torch.tensor([math.nan, math.inf, -math.inf], dtype=DTYPE).reshape(1, 3, 1, 1).expand(1, 3, 3, 2)
    for line in s_shape_relaxation(s, l, u, odd):
        assert torch.isfinite(line).all()


@pytest.mark.parametrize("name", sorted(S_SHAPES))
def test_s_shape_parameters_get_gradients_even_on_the_ends(name: str) -> None:
    """The projection passes gradients straight through, so CROWN's defaults (t = 0 when straddling)
    can move; neurons whose lines have no parameter (chords, constant boxes) get none; never NaN."""
    s = S_SHAPES[name]
    l = torch.tensor([[-3.0, 0.5, -4.0, 1.0, -1e6, -2.0]], dtype=DTYPE)
    u = torch.tensor([[2.0, 3.0, -1.0, 1.0, 1e6, 2.0]], dtype=DTYPE)
    for start in (0.0, 0.5, 1.0, -0.5, 1.5):
        t = torch.full((1, 2, 6, 2), start, dtype=DTYPE, requires_grad=True)
        total = sum(x.sum() for x in s_shape_relaxation(s, l, u, t))
        (grad,) = torch.autograd.grad(total, t)
        assert torch.isfinite(grad).all()
        assert (grad[..., 0, :] != 0).all() and (grad[..., 1, 0] != 0).all()  # straddling, concave (upper)
        assert (grad[..., 1, 1] == 0).all() and (grad[..., 2, 0] == 0).all()  # chords
        assert (grad[..., 3, :] == 0).all()  # a point box


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
@given(st.sampled_from(sorted(ACTIVATION_OPS)), st.data(), st.integers(1, 4), st.sampled_from(RELAX_RANGES))
def test_backward_is_a_sound_lower_bound(op: str, data: st.DataObject, rows: int,
                                         relax_range: tuple[float, float] | None) -> None:
    """sum(A * y) >= sum(A_in * x) + bias at points of the box, for A of both signs, per batch element,
    with the default relaxation or random per-row parameters."""
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    l, u = (t.repeat(48 // t.numel() + 1)[:48].reshape(3, 2, 8) for t in data.draw(boxes()))
    node = _node(op, gen)
    rule = ACTIVATION_OPS[op]
    A = torch.randn((data.draw(st.sampled_from([1, 3])), rows, 2, 8), generator=gen, dtype=DTYPE)
    relax = None if relax_range is None else random_relax(op, (3, rows, 2, 8), relax_range, gen)
    (A_in,), bias = rule.backward(node, A, ((l, u),), relax)
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


OPTIMISED = ("sigmoid", "tanh", "leaky_relu", "relu")  # the ops alpha-CROWN has parameters for


@no_deadline
@given(activation_cases(ops=("sigmoid", "tanh", "leaky_relu")), st.sampled_from([(0.0, 1.0), (-0.5, 1.5)]))
def test_crown_is_sound_for_any_relaxation_parameters(case: Case, relax_range: tuple[float, float]) -> None:
    gen = torch.Generator().manual_seed(case.seed + 1)
    rows = 2 * case.C.shape[-2]
    relax = {n.name: random_relax(n.op, (case.batch, rows) + n.shape, relax_range, gen)
             for n in case.graph.nodes if n.op in OPTIMISED}
    result = crown(case.graph, case.lower, case.upper, case.C, alphas=relax)
    _assert_crown_sound(case, result.lb, result.ub, result.intermediate)


_fewer = settings(deadline=None, max_examples=max(10, settings.default.max_examples // 4))


@_fewer
@given(activation_cases(ops=OPTIMISED), st.sampled_from([(1, 0.1), (5, 0.1), (5, 0.5)]),
       st.sampled_from([("sigmoid", "tanh"), ()]))
def test_alpha_crown_is_sound_and_never_looser_than_crown(case: Case, schedule: tuple[int, float],
                                                          intermediate_ops: tuple[str, ...]) -> None:
    """alpha-CROWN optimises every activation's parameters (and, by default, the bounds on the inputs
    of sigmoid/tanh layers); its bound and intermediate boxes hold at attack points and are never
    looser than CROWN's, and the parameters it returns (in range) reproduce its bound on every row
    it improved."""
    config = AlphaConfig(*schedule, intermediate_ops=intermediate_ops)
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=config)
    k = case.C.shape[-2]
    assert set(result.alphas) == {n.name for n in case.graph.nodes if n.op in OPTIMISED}
    for node in case.graph.nodes:
        if node.op in OPTIMISED:
            a = result.alphas[node.name]
            assert a.shape == (case.batch, k) + node.shape + ((2,) if node.op in S_SHAPES else ())
            assert torch.isfinite(a).all() and (a >= 0).all() and (a <= 1).all()
    base = crown(case.graph, case.lower, case.upper, case.C, need_upper=False)
    plain = base.lb
    assert (result.lb >= plain).all(), "alpha-CROWN lost ground on CROWN"
    for name, (l, u) in result.intermediate.items():
        assert (l >= base.intermediate[name][0]).all() and (u <= base.intermediate[name][1]).all(), name
        if not intermediate_ops:
            assert torch.equal(l, base.intermediate[name][0]) and torch.equal(u, base.intermediate[name][1])
    _assert_crown_sound(case, result.lb, torch.full_like(result.lb, math.inf), result.intermediate)
    again = crown(case.graph, case.lower, case.upper, case.C, intermediate=result.intermediate,
                  alphas=result.alphas, need_upper=False).lb
    improved = result.lb > plain
    torch.testing.assert_close(again[improved], result.lb[improved], rtol=1e-9, atol=1e-9)
    if not intermediate_ops:
        torch.testing.assert_close(again, result.lb, rtol=1e-9, atol=1e-9)


@_fewer
@given(activation_cases(ops=OPTIMISED))
def test_alpha_crown_starts_from_crowns_lines(case: Case) -> None:
    """The initial parameters reproduce CROWN's objective bound (up to the last bits, which torch's
    vectorised and scalar sigmoid paths may differ in)."""
    plain = crown(case.graph, case.lower, case.upper, case.C, need_upper=False)
    init = initial_alphas(case.graph, plain.intermediate, case.C.shape[-2])
    again = crown(case.graph, case.lower, case.upper, case.C, intermediate=plain.intermediate,
                  alphas=init, need_upper=False).lb
    torch.testing.assert_close(again, plain.lb, rtol=1e-12, atol=1e-12)
    idle = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations=0))
    assert torch.equal(idle.lb, plain.lb)
    for name, a in idle.alphas.items():
        assert torch.equal(a, init[name]), name


def _sigmoid_mlp(seed: int, op: str) -> Graph:
    b = GraphBuilder(torch.Generator().manual_seed(seed))
    x = b.add("input", (), (4,))
    for _ in range(3):
        x = b.add(op, (b.linear(x, 16, bias_scale=0.5),), (16,))
    return b.graph(b.linear(x, 3))


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
def test_alpha_crown_tightens_s_shaped_networks(op: str) -> None:
    """Optimising the tangent points pays: over a few seeded nets and boxes of several radii the mean
    lower bound rises above CROWN's (and, row by row, never falls below it); tightening the
    intermediate bounds too shrinks them on average and raises the mean bound further."""
    crown_lb, objective_only, with_intermediate, widths = [], [], [], []
    for seed in range(4):
        graph = _sigmoid_mlp(seed, op)
        gen = torch.Generator().manual_seed(200 + seed)
        centre = torch.randn(3, 4, generator=gen, dtype=DTYPE)
        radius = torch.tensor([0.1, 0.5, 1.0], dtype=DTYPE).unsqueeze(1)
        lower, upper = centre - radius, centre + radius
        C = torch.randn(2, 3, generator=gen, dtype=DTYPE)
        plain = crown(graph, lower, upper, C, need_upper=False)
        alone = alpha_crown(graph, lower, upper, C, config=AlphaConfig(iterations=20, intermediate_ops=()))
        full = alpha_crown(graph, lower, upper, C, config=AlphaConfig(iterations=20))
        assert (alone.lb >= plain.lb).all() and (full.lb >= plain.lb).all()
        crown_lb.append(plain.lb)
        objective_only.append(alone.lb)
        with_intermediate.append(full.lb)
        widths += [((full.intermediate[n][1] - full.intermediate[n][0]).mean(), (u - l).mean())
                   for n, (l, u) in plain.intermediate.items()]
    crown_mean, alone_mean, full_mean = (torch.stack(t).mean() for t in (crown_lb, objective_only, with_intermediate))
    assert alone_mean > crown_mean, f"optimised {op} lines did not tighten: {alone_mean:.4g} vs {crown_mean:.4g}"
    assert full_mean > alone_mean, f"tighter intermediate bounds did not help: {full_mean:.4g} vs {alone_mean:.4g}"
    assert sum(w for w, _ in widths) < sum(w for _, w in widths)


def test_alpha_crown_on_s_shaped_networks_stops_at_its_deadline() -> None:
    """A passed deadline stops the intermediate tightening too: CROWN's bound and boxes come back."""
    graph = _sigmoid_mlp(0, "sigmoid")
    lower = torch.zeros(2, 4, dtype=DTYPE) - 0.5
    C = torch.eye(3, dtype=DTYPE)
    plain = crown(graph, lower, -lower, C, need_upper=False)
    result = alpha_crown(graph, lower, -lower, C, config=AlphaConfig(iterations=10_000),
                         deadline=time.monotonic() - 1.0)
    assert (result.lb >= plain.lb).all()  # its last, unoptimised iterate may win by an ulp
    torch.testing.assert_close(result.lb, plain.lb, rtol=1e-12, atol=1e-12)
    for name, (l, u) in plain.intermediate.items():
        assert torch.equal(result.intermediate[name][0], l) and torch.equal(result.intermediate[name][1], u)


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
