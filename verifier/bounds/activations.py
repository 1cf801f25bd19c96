"""Bound rules for the elementwise nonlinear activations sigmoid, tanh and leaky_relu.

Same `OpRule` contract as `verifier.bounds.ops` (read its docstring). `ACTIVATION_OPS` is merged into
`OPS` there, so this module imports the registry's relu helpers only at call time (`_ops`). Each
activation is relaxed per neuron by two lines valid on the neuron's input box [l, u]:

    low_slope * x + low_bias  <=  act(x)  <=  up_slope * x + up_bias.

Sigmoid and tanh are S-shaped (increasing, convex for x < 0, concave for x > 0, point-symmetric about
(0, s(0))). Their upper line is the chord where it lies above s (u <= 0, or a straddling box whose
chord slope is at most s'(u)), else a tangent at a point d chosen by a parameter t in [0, 1], as
alpha-CROWN does for S-shaped functions: on the concave side (l >= 0) d = (1 - t) l + t u, any point
of the box; on a straddling box d = (1 - t) d0 + t u, where d0 in [0, u] is the point whose tangent
passes through (l, s(l)), found by bisection (tangents at d in [d0, u] pass above (l, s(l)) and bound
s on all of [l, u]; those beyond u are looser at both ends). CROWN's lines, the default, are t = 1/2
on the concave side (the midpoint tangent) and t = 0 when straddling. The lower line is the upper line
of the point reflection s(x) = 2 s(0) - s(-x), with its own parameter (so for both lines t = 0 is
the end of the range nearer 0 and t = 1 the far end of the box). Soundness never rests on the
parameter or on the bisection: any d >= 0 gives a tangent above s on [0, inf), and once the line is
lifted over (l, s(l)) it is above s on [l, 0] too (line - s is concave there), so t is only projected
onto [0, 1] for tightness' sake. Rounding is covered by lifting each line over the endpoints and then
by a margin of a few ulps of the line's magnitude. Boxes narrower than sqrt(eps), or with non-finite
ends, get the constant lines s(l) and s(u) (valid because s is increasing). The interval (s(l), s(u))
is widened by a few ulps too: torch's sigmoid differs in the last bit between its vectorised and
scalar paths, so s(l) computed here may exceed s(l) computed elsewhere.

leaky_relu (y = x for x >= 0, alpha * x otherwise, attrs["alpha"] >= 0) is alpha * x + (1 - alpha) *
relu(x), so its lines are those of relu (`ops.relu_relaxation`) scaled and shifted: the chord above and
a slope in [alpha, 1] below (for alpha > 1, where it is concave, the other way round). Its relaxation
parameter is relu's lower slope t in [0, 1], giving the slope alpha + (1 - alpha) * t, so alpha-CROWN
can optimise it exactly like a relu's (same initialisation, same projection).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, NamedTuple, Optional, Sequence

import torch

from verifier.bounds.box import dot_rows
from verifier.bounds.rule import BackwardResult, Box, OpRule, Tensor, per_sample_sum
from verifier.model.graph import Node

# Bisection halvings for the tangent point: pins it to about 1e-6 of the box width, where the line
# is as tight as CROWN's; more costs time (it is the bulk of the rule's cost) and buys nothing.
_BISECTION_STEPS = 20
# Rounding margin, in ulps of the line's magnitude: covers computing the line, and evaluating
# slope * x + bias and the activation itself, each to within a few ulps.
_MARGIN_ULPS = 32.0


class LinearRelaxation(NamedTuple):
    """low_slope * x + low_bias <= act(x) <= up_slope * x + up_bias on the box. Each tensor is
    (B, 1, *s), or (B, R, *s) where a per-row relaxation parameter moves it; a None bias is 0."""

    low_slope: Tensor
    low_bias: Optional[Tensor]
    up_slope: Tensor
    up_bias: Optional[Tensor]


def relaxation_backward(A: Tensor, rel: LinearRelaxation) -> BackwardResult:
    """One backward step through y = act(x) given its linear relaxation: positive coefficients take
    the lower line, negative ones the upper, written as A low + A- (up - low) (one pass fewer over A)."""
    A_neg = A.clamp(max=0)
    A_in = A * rel.low_slope + A_neg * (rel.up_slope - rel.low_slope)
    bias = A.new_zeros(A.shape[:2])
    if rel.low_bias is not None:
        bias = bias + _bias_rows(A, rel.low_bias)
    up_minus_low = _bias_difference(rel.up_bias, rel.low_bias)
    if up_minus_low is not None:
        bias = bias + _bias_rows(A_neg, up_minus_low)
    return [A_in], bias


def _bias_rows(A: Tensor, bias: Tensor) -> Tensor:
    """sum(A * bias) per batch element and row -> (B, R): a matrix product for a bias shared by the
    rows (B, 1, *s), elementwise for per-row biases (B, R, *s)."""
    if bias.shape[1] == 1:
        return dot_rows(A.flatten(2), bias.flatten(1))
    return per_sample_sum(A * bias)


def _bias_difference(up: Optional[Tensor], low: Optional[Tensor]) -> Optional[Tensor]:
    if up is None:
        return None if low is None else -low
    return up if low is None else up - low


def _input_box(node: Node, input_bounds: Sequence[Optional[Box]]) -> Box:
    box = input_bounds[0]
    if box is None:
        raise ValueError(f"{node.op} node {node.name!r}: backward needs bounds on its input")
    return box


# --- sigmoid and tanh --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SShape:
    """An increasing activation, convex on x <= 0 and concave on x >= 0, with s(x) = 2 s(0) - s(-x)."""

    fn: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]  # s', accurate to a few ulps relative even where s saturates
    grad_from_value: Callable[[Tensor], Tensor]  # s' from s: cheaper, but cancels where s saturates
    centre: float  # s(0)


def _sigmoid_grad(x: Tensor) -> Tensor:
    return torch.sigmoid(x) * torch.sigmoid(-x)  # not s (1 - s): that cancels for large x


def _tanh_grad(x: Tensor) -> Tensor:
    return 4 * torch.sigmoid(2 * x) * torch.sigmoid(-2 * x)  # not 1 - tanh^2, which cancels


SIGMOID = SShape(torch.sigmoid, _sigmoid_grad, lambda s: s * (1 - s), 0.5)
TANH = SShape(torch.tanh, _tanh_grad, lambda t: 1 - t * t, 0.0)


def s_shape_relaxation(s: SShape, l: Tensor, u: Tensor, relax: Optional[Tensor] = None) -> LinearRelaxation:
    """Sound lower and upper lines of s on each [l, u] (B, *s).

    relax: None for CROWN's lines, else the tangent-point parameters (see the module docstring) of
    shape (..., 2): relax[..., 0] for the upper line and relax[..., 1] for the lower one, each
    broadcastable to (B, R, *s). Any value is sound: it is projected onto [0, 1] (with the gradient
    passed straight through, as for relu's slopes). The lines are (B, 1, *s) without relax, else
    (B, R, *s)."""
    eps = torch.finfo(l.dtype).eps
    l, u = l.unsqueeze(1), u.unsqueeze(1)
    # Narrow, unbounded (and empty or NaN) boxes get constant lines. The constructions run on
    # sanitised copies so that no inf/NaN arises, even in the branches torch.where discards (they
    # would poison gradients).
    constant = ~(torch.isfinite(l) & torch.isfinite(u) & (u - l > math.sqrt(eps)))
    zero = torch.zeros_like(l)
    lf, uf = torch.where(constant, zero, l), torch.where(constant, zero + 1, u)
    if relax is None:
        t_up, t_low = default_s_shape_relax(lf, uf).unbind(-1)
    else:
        t_up, t_low = _project_unit_exactly(relax[..., 0]), _project_unit_exactly(relax[..., 1])
    s_lf, s_uf = s.fn(lf), s.fn(uf)
    up_slope, up_bias = _upper_line(s, lf, uf, t_up)
    mirror_slope, mirror_bias = _upper_line(s, -uf, -lf, t_low)  # s(x) = 2 s(0) - s(-x)
    low_slope, low_bias = mirror_slope, 2 * s.centre - mirror_bias
    up_bias = _lift_over_ends(up_slope, up_bias, lf, uf, s_lf, s_uf, above=True)
    low_bias = _lift_over_ends(low_slope, low_bias, lf, uf, s_lf, s_uf, above=False)
    constant = constant | ~(torch.isfinite(up_slope) & torch.isfinite(up_bias)
                            & torch.isfinite(low_slope) & torch.isfinite(low_bias))
    up_slope, low_slope = torch.where(constant, zero, up_slope), torch.where(constant, zero, low_slope)
    up_bias, low_bias = torch.where(constant, s.fn(u), up_bias), torch.where(constant, s.fn(l), low_bias)
    reach = torch.maximum(lf.abs(), uf.abs())
    up_bias = up_bias + _margin(up_slope, up_bias, reach, eps)
    low_bias = low_bias - _margin(low_slope, low_bias, reach, eps)
    return LinearRelaxation(low_slope, low_bias, up_slope, up_bias)


def default_s_shape_relax(l: Tensor, u: Tensor) -> Tensor:
    """The parameters (*l.shape, 2) of CROWN's lines on [l, u]: the upper tangent point is the
    midpoint (t = 1/2) on the concave side l >= 0 and the bisection's point (t = 0) on a straddling
    box; the lower one likewise for the reflection (u <= 0). Where a line is a chord t is unused."""
    half, zero = torch.full_like(l, 0.5), torch.zeros_like(l)
    return torch.stack([torch.where(l >= 0, half, zero), torch.where(u <= 0, half, zero)], dim=-1)


def _project_unit_exactly(t: Tensor) -> Tensor:
    """t clamped to [0, 1] (NaN to 0) with the gradient passed straight through, like relu's
    `ops._project_unit` (CROWN's defaults sit on the ends, where clamp's gradient is 0), but with the
    clamp's value bit for bit: t + (clamp(t) - t) can round just outside [0, 1], and d >= 0 rests on
    1 - t >= 0 and t >= 0."""
    straight = torch.nan_to_num(t - t.detach(), nan=0.0, posinf=0.0, neginf=0.0)  # value 0, gradient 1
    return torch.nan_to_num(t, nan=0.0).clamp(0, 1) + straight


def _upper_line(s: SShape, l: Tensor, u: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """(slope, bias) of the upper line of s on [l, u], l < u finite, with tangent-point parameter t
    in [0, 1] (see the module docstring), before any rounding margin."""
    s_l, s_u = s.fn(l), s.fn(u)
    chord = (s_u - s_l) / (u - l)
    chord_bias = s_l - chord * l
    # The chord is above s when s is convex on the box, or when s'(u) >= chord slope on a box that
    # straddles 0 (then s - chord is <= 0 on the concave part and, being convex there, on the rest).
    use_chord = (u <= 0) | ((l < 0) & (s.grad(u) >= chord))
    # Otherwise a tangent at a point between `start` and u: start = l on the concave side (l >= 0),
    # else the bisection's point whose tangent passes through (l, s(l)). Both are >= 0, and so is d
    # (a sum of products of non-negative numbers, even rounded).
    through_l = ~use_chord & (l < 0)
    start = l.masked_scatter(through_l, _tangent_point(s, l[through_l], u[through_l]))
    d = (1 - t) * start + t * u
    tangent = s.grad(d)
    tangent_bias = s.fn(d) - tangent * d
    return torch.where(use_chord, chord, tangent), torch.where(use_chord, chord_bias, tangent_bias)


def _tangent_point(s: SShape, l: Tensor, u: Tensor) -> Tensor:
    """For l < 0 < u, a point d in [0, u] whose tangent passes on or above (l, s(l)), as close to the
    smallest such point as the bisection gets.

    g(d) = tangent at d evaluated at l, minus s(l), increases on d >= 0 (where s'' <= 0 and l < d)
    from g(0) <= 0, and g(u) >= 0 when the chord is not used. Bisection keeps the end with g >= 0.
    Any such d gives an upper line valid on [l, inf): tangents on the concave side lie above s for
    x >= 0, and on [l, 0] line - s is concave, >= 0 at l and at 0. So the bisection's own rounding
    (it uses the cheaper s' from s) is harmless, and the line's gradient treats this d as a constant
    (gradients reach the tangent point through the parameter t only).
    """
    with torch.no_grad():
        lo, hi = torch.zeros_like(u), u
        s_l = s.fn(l)
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * lo + 0.5 * hi
            s_mid = s.fn(mid)
            above = s_mid + s.grad_from_value(s_mid) * (l - mid) >= s_l
            lo, hi = torch.where(above, lo, mid), torch.where(above, mid, hi)
        return hi


def _lift_over_ends(slope: Tensor, bias: Tensor, l: Tensor, u: Tensor, s_l: Tensor, s_u: Tensor,
                    above: bool) -> Tensor:
    """Shift bias so that the line is on the right side of s at both ends of the box.

    Every construction above is exact up to rounding once it holds at the ends (chords by convexity,
    tangent points found by bisection by the concavity argument), so this absorbs the rounding in the
    chord/tangent tests and in the chord's slope for narrow boxes."""
    gap_l, gap_u = s_l - (slope * l + bias), s_u - (slope * u + bias)
    if above:
        return bias + torch.maximum(gap_l, gap_u).clamp(min=0)
    return bias + torch.minimum(gap_l, gap_u).clamp(max=0)


def _margin(slope: Tensor, bias: Tensor, reach: Tensor, eps: float) -> Tensor:
    """A few ulps of the largest term of slope * x + bias on the box (|x| <= reach), plus of 1 (the
    scale of s): the rounding error of the line and of s(x) at any point of the box."""
    return _MARGIN_ULPS * eps * (1 + bias.abs() + slope.abs() * reach)


def _widen(lo: Tensor, hi: Tensor) -> Box:
    """(lo, hi) moved out by a few ulps (see the module docstring)."""
    finfo = torch.finfo(lo.dtype)
    return lo - (4 * finfo.eps * lo.abs() + finfo.tiny), hi + (4 * finfo.eps * hi.abs() + finfo.tiny)


def _s_shape_rule(s: SShape) -> OpRule:
    def forward(node: Node, x: Tensor) -> Tensor:
        return s.fn(x)

    def interval(node: Node, box: Box) -> Box:
        return _widen(s.fn(box[0]), s.fn(box[1]))

    def backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                 relax: Optional[Tensor]) -> BackwardResult:
        """relax: None (CROWN's lines) or (..., 2) tangent-point parameters, [..., 0] for the upper
        line and [..., 1] for the lower, each broadcastable to (B, R, *s); see `s_shape_relaxation`."""
        return relaxation_backward(A, s_shape_relaxation(s, *_input_box(node, input_bounds), relax))

    return OpRule(forward=forward, interval=interval, backward=backward, exact_where=_point_box)


def _point_box(l: Tensor, u: Tensor) -> Tensor:
    """A zero-width box gets constant lines, which are exact: there is nothing to tighten."""
    return l == u


# --- leaky_relu ------------------------------------------------------------------------------------

def leaky_alpha(node: Node) -> float:
    """The negative slope; negative values (a non-monotone activation) are rejected."""
    alpha = float(node.attrs.get("alpha", 0.01))
    if not alpha >= 0 or not math.isfinite(alpha):
        raise ValueError(f"leaky_relu node {node.name!r}: negative slope alpha={alpha} is not supported "
                         f"(need a finite alpha >= 0)")
    return alpha


def _ops() -> ModuleType:
    """The registry module, for its relu helpers; imported at call time because it imports this one."""
    from verifier.bounds import ops

    return ops


def leaky_relu_relaxation(alpha: float, l: Tensor, u: Tensor, relax: Optional[Tensor]) -> LinearRelaxation:
    """Lines of alpha * x + (1 - alpha) * relu(x) from relu's: for alpha <= 1 the lower slope is
    alpha + (1 - alpha) * t (t = relax projected onto [0, 1], default CROWN's adaptive 0 or 1) and
    the upper line the chord; for alpha > 1 (concave) the roles of relu's lines swap."""
    r_low, r_up, r_up_bias = _ops().relu_relaxation(l, u, relax)
    c = 1.0 - alpha
    if c >= 0:
        return LinearRelaxation(alpha + c * r_low, None, alpha + c * r_up, c * r_up_bias)
    return LinearRelaxation(alpha + c * r_up, c * r_up_bias, alpha + c * r_low, None)


def _leaky_relu(node: Node, x: Tensor) -> Tensor:
    return torch.where(x >= 0, x, leaky_alpha(node) * x)


def _leaky_relu_interval(node: Node, box: Box) -> Box:
    return _leaky_relu(node, box[0]), _leaky_relu(node, box[1])  # increasing for alpha >= 0


def _stable(l: Tensor, u: Tensor) -> Tensor:
    return _ops()._relu_exact_where(l, u)


def _leaky_relu_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                         relax: Optional[Tensor]) -> BackwardResult:
    l, u = _input_box(node, input_bounds)
    return relaxation_backward(A, leaky_relu_relaxation(leaky_alpha(node), l, u, relax))


ACTIVATION_OPS: dict[str, OpRule] = {
    "sigmoid": _s_shape_rule(SIGMOID),
    "tanh": _s_shape_rule(TANH),
    "leaky_relu": OpRule(forward=_leaky_relu, interval=_leaky_relu_interval, backward=_leaky_relu_backward,
                         exact_where=_stable),
}
