"""The op registry: one entry per canonical graph op, with its concrete semantics and its relaxations.

Adding an op means adding one `OpRule` here (and teaching the ONNX front end to emit it); the IBP and
CROWN interpreters walk any DAG of registered ops without further changes.
Every function is pure and batched over the leading dimension; nothing is stored on nodes.

Rule contracts (B = batch, R = number of bound rows, `*s` = a node's per-sample shape):

- ``forward(node, *xs) -> y``: concrete value, every tensor (B, *s).
- ``interval(node, *boxes) -> (l, u)``: a sound box of the output given one ``(l, u)`` box per input,
  every tensor (B, *s).
- ``backward(node, A, input_bounds, relax) -> (As, bias)``: one step of backward linear bound
  propagation for LOWER bounds. ``A`` (B or 1, R, *node.shape) holds the coefficients of a bound
  expression with respect to this node's output y. The rule returns one coefficient tensor per input
  (B or 1, R, *input.shape) -- any shape with the input's number of elements per row will do, the
  interpreter views it in the input's shape (row-major) -- or None for an input the expression does
  not depend on, and ``bias`` broadcastable to (B, R), such that for every feasible input value x_i

      sum(A * y) >= sum_i sum(As[i] * x_i) + bias        (sums over the per-sample dims).

  Upper bounds are obtained by running the same rule on -A and negating. ``input_bounds`` is a tuple
  with one ``(l, u)`` (B, *input.shape) per input, or None where the interpreter has none (affine rules
  never look at it). ``relax`` is an op-specific relaxation parameter or None for the default; for relu
  it is the lower slope alpha, broadcastable to (B, R, *s). Rules must be differentiable with respect
  to A, the bounds and relax: no in-place ops on them, no ``.item()``.
- ``affine``: True when ``backward`` is exact and needs neither bounds nor relax. The interpreters need
  pre-activation bounds exactly for the inputs of non-affine nodes.
- ``exact_where(l, u)``: optional; which input neurons the relaxation is already exact on (stable
  relus), so CROWN skips tightening their intermediate bounds.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from verifier.bounds.box import dot_rows
from verifier.bounds.rule import (  # noqa: F401 - OpRule and the aliases are re-exported
    Box, BackwardResult, BackwardRule, OpRule, Tensor, no_bias as _no_bias, per_sample_sum as _per_sample_sum,
)
from verifier.model.graph import Node


# --- linear: y = x @ W.T + b ---------------------------------------------------------------------

def _linear(node: Node, x: Tensor) -> Tensor:
    return x @ node.params["W"].T + node.params["b"]


def _linear_interval(node: Node, box: Box) -> Box:
    # Positive/negative split rather than centre/radius: exact for zero-width input dims.
    l, u = box
    W, b = node.params["W"], node.params["b"]
    Wp, Wn = W.clamp(min=0), W.clamp(max=0)
    return l @ Wp.T + u @ Wn.T + b, u @ Wp.T + l @ Wn.T + b


def _linear_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                     relax: Optional[Tensor]) -> BackwardResult:
    W, b = node.params["W"], node.params["b"]
    return [A @ W], A @ b


# --- relu ------------------------------------------------------------------------------------------

def _relu(node: Node, x: Tensor) -> Tensor:
    return torch.relu(x)


def _relu_interval(node: Node, box: Box) -> Box:
    return torch.relu(box[0]), torch.relu(box[1])


def _relu_exact_where(l: Tensor, u: Tensor) -> Tensor:
    return (l >= 0) | (u <= 0)


def default_relu_alpha(l: Tensor, u: Tensor) -> Tensor:
    """CROWN's adaptive lower slope: 1 where the upper end dominates (u >= -l), else 0. Shape of l."""
    return (u >= -l).to(l.dtype)


def _project_unit(alpha: Tensor) -> Tensor:
    """alpha clamped to [0, 1] (where the lower relaxation is valid), with the gradient passed straight
    through: CROWN's slopes start exactly at 0 or 1, where clamp's own gradient is 0 and alpha-CROWN
    would never move them. The value, and so soundness, is that of the clamp."""
    return alpha + (alpha.clamp(0, 1) - alpha).detach()


def relu_relaxation(l: Tensor, u: Tensor, alpha: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Linear bounds alpha*x <= relu(x) <= up_slope*x + up_bias valid on [l, u].

    Returns (low_slope, up_slope, up_bias). Stable-active neurons get identity, stable-inactive zero,
    unstable ones the chord above and slope alpha (clamped to [0, 1], where the bound is valid) below.
    low_slope broadcasts to (B, R, *s) when alpha has a row dim, else it is (B, 1, *s); the others
    are (B, 1, *s).
    """
    return _with_lower(_relu_parts(l, u), alpha)


def _relu_parts(l: Tensor, u: Tensor) -> tuple[Tensor, ...]:
    """What relu's relaxation on [l, u] needs besides alpha, each (B, 1, *s): the unstable mask, the
    upper line's slope and bias, and the lower slope with CROWN's default alpha."""
    l, u = l.unsqueeze(1), u.unsqueeze(1)
    active, unstable = l >= 0, (l < 0) & (u > 0)
    one, zero = torch.ones_like(l), torch.zeros_like(l)
    width = torch.where(unstable, u - l, one)  # never divide by zero, keeps gradients finite
    chord = u / width
    up_slope = torch.where(unstable, chord, torch.where(active, one, zero))
    up_bias = torch.where(unstable, -chord * l, zero)
    return unstable, up_slope, up_bias, torch.where(unstable, default_relu_alpha(l, u), up_slope)


def _with_lower(parts: tuple[Tensor, ...], alpha: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    # A stable neuron's lower slope equals its upper one (1 active, 0 inactive).
    unstable, up_slope, up_bias, default_low = parts
    low_slope = default_low if alpha is None else torch.where(unstable, _project_unit(alpha), up_slope)
    return low_slope, up_slope, up_bias


class ReluBox(tuple):
    """A box (lower, upper) on a relu's input carrying the parts of its relaxation (`_relu_parts`),
    computed once: CROWN's layer-by-layer intermediate bounds cross each relu once per later layer
    (and per gathered (box, neuron) pair), and recomputing ~12 elementwise ops each time was a fifth of
    an input-split search on ACAS Xu. Any other transformation of the box yields a plain tuple, which
    recomputes; `take` gathers boxes and parts together, so they always describe the same bounds."""

    parts: tuple[Tensor, ...]

    def __new__(cls, lower: Tensor, upper: Tensor, parts: Optional[tuple[Tensor, ...]] = None) -> "ReluBox":
        self = super().__new__(cls, (lower, upper))
        self.parts = _relu_parts(lower, upper) if parts is None else parts
        return self

    def take(self, rows: Tensor) -> "ReluBox":
        """The boxes `rows` of the batch, with their parts."""
        return ReluBox(self[0][rows], self[1][rows], tuple(t[rows] for t in self.parts))


def relu_box_relaxation(box: Box, alpha: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """`relu_relaxation` of the box, from its carried parts when it is a `ReluBox`."""
    parts = getattr(box, "parts", None)
    return relu_relaxation(box[0], box[1], alpha) if parts is None else _with_lower(parts, alpha)


def _relu_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                   relax: Optional[Tensor]) -> BackwardResult:
    box = input_bounds[0]
    if box is None:
        raise ValueError(f"relu node {node.name!r}: backward needs bounds on its input")
    low_slope, up_slope, up_bias = relu_box_relaxation(box, relax)
    # Positive coefficients need the lower relaxation of relu, negative ones the upper:
    # A+ low + A- up, written as A low + A- (up - low) to make one pass fewer over A, since this is
    # the hot loop of CROWN's intermediate bounds.
    A_neg = A.clamp(max=0)
    return [A * low_slope + A_neg * (up_slope - low_slope)], dot_rows(A_neg.flatten(2), up_bias.flatten(1))


# --- reshape ---------------------------------------------------------------------------------------

def _reshape(node: Node, x: Tensor) -> Tensor:
    return x.reshape((x.shape[0],) + tuple(node.attrs["shape"]))


def _reshape_interval(node: Node, box: Box) -> Box:
    return _reshape(node, box[0]), _reshape(node, box[1])


def _reshape_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                      relax: Optional[Tensor]) -> BackwardResult:
    # Row-major order is shared by both shapes; the interpreter views A in the input's shape.
    return [A], _no_bias(A)


# --- scale_shift: y = x * scale + shift ------------------------------------------------------------

def _scale_shift(node: Node, x: Tensor) -> Tensor:
    return x * node.params["scale"] + node.params["shift"]


def _scale_shift_interval(node: Node, box: Box) -> Box:
    a, b = _scale_shift(node, box[0]), _scale_shift(node, box[1])
    return torch.minimum(a, b), torch.maximum(a, b)  # scale may be negative


def _scale_shift_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                          relax: Optional[Tensor]) -> BackwardResult:
    # scale/shift broadcast against the trailing per-sample dims of A, as they do in forward.
    return [A * node.params["scale"]], _per_sample_sum(A * node.params["shift"])


BASIC_OPS: dict[str, OpRule] = {
    "linear": OpRule(forward=_linear, interval=_linear_interval, backward=_linear_backward, affine=True),
    "relu": OpRule(forward=_relu, interval=_relu_interval, backward=_relu_backward,
                   exact_where=_relu_exact_where),
    "reshape": OpRule(forward=_reshape, interval=_reshape_interval, backward=_reshape_backward, affine=True),
    "scale_shift": OpRule(forward=_scale_shift, interval=_scale_shift_interval,
                          backward=_scale_shift_backward, affine=True),
}

# The rule modules import only `verifier.bounds.rule`, never this registry, so the order is free.
from verifier.bounds.conv_ops import CONV_OPS  # noqa: E402
from verifier.bounds.tensor_ops import TENSOR_OPS  # noqa: E402
from verifier.bounds.activations import ACTIVATION_OPS  # noqa: E402
from verifier.bounds.smooth_ops import SMOOTH_OPS  # noqa: E402
from verifier.bounds.step_ops import STEP_OPS  # noqa: E402
from verifier.bounds.product_ops import PRODUCT_OPS  # noqa: E402

OPS: dict[str, OpRule] = {**BASIC_OPS, **CONV_OPS, **TENSOR_OPS, **ACTIVATION_OPS, **SMOOTH_OPS, **STEP_OPS,
                          **PRODUCT_OPS}
